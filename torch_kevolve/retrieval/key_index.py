"""KeyIndex: exact inner-product FAISS index over cache keys, saved as a FAISS file plus JSON metadata.

No pickle: the vectors go through faiss.write_index/read_index, the keys through JSON, and the metadata
holds the index file's sha256, so a corrupted or mismatched pair is refused (and can be rebuilt).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import faiss
import numpy as np

from ..key import OpKey
from .vectors import KeyVectorizer

FORMAT = 1
INDEX_FILE = "keys.faiss"
META_FILE = "keys.json"
log = logging.getLogger("torch_kevolve")


class RetrievalIndexError(Exception):
    """An index on disk that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class Neighbour:
    key: OpKey
    similarity: float

    @property
    def distance(self) -> float:
        return 1.0 - self.similarity


class KeyIndex:
    """The keys added so far and their vectors; `nearest` answers exact cosine-similarity queries."""

    def __init__(self, vectorizer: KeyVectorizer):
        self.vectorizer = vectorizer
        self._index = faiss.IndexFlatIP(vectorizer.dim)
        self._keys: list[OpKey] = []
        self._ids: set[str] = set()

    def __len__(self) -> int:
        return len(self._keys)

    def keys(self) -> list[OpKey]:
        return list(self._keys)

    def add(self, keys: Iterable[OpKey]) -> int:
        """Add the keys not yet indexed; return how many were new."""
        new = []
        for key in keys:
            if key.id not in self._ids:
                self._ids.add(key.id)
                new.append(key)
        if new:
            self._index.add(np.stack([self.vectorizer(k) for k in new]))
            self._keys.extend(new)
        return len(new)

    def nearest(self, key: OpKey, k: int = 5, family: str | None = None, exclude_self: bool = False) -> list[Neighbour]:
        """The k most similar indexed keys (of `family` only, if given), most similar first."""
        if not self._keys:
            return []
        similarities, positions = self._index.search(self.vectorizer(key)[None, :], len(self._keys))
        found = []
        for similarity, position in zip(similarities[0], positions[0]):
            candidate = self._keys[position]
            if (family and candidate.family != family) or (exclude_self and candidate.id == key.id):
                continue
            found.append(Neighbour(candidate, float(similarity)))
            if len(found) == k:
                break
        return found

    def save(self, directory: str | os.PathLike) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        partial = directory / f".{INDEX_FILE}.{os.getpid()}.tmp"
        faiss.write_index(self._index, str(partial))
        meta = {"format": FORMAT, "dim": self.vectorizer.dim, "weights": self.vectorizer.weights.to_dict(),
                "index_sha256": _sha256(partial), "keys": [k.to_dict() for k in self._keys]}
        meta_partial = directory / f".{META_FILE}.{os.getpid()}.tmp"
        meta_partial.write_text(json.dumps(meta, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(partial, directory / INDEX_FILE)
        os.replace(meta_partial, directory / META_FILE)

    @classmethod
    def load(cls, directory: str | os.PathLike, vectorizer: KeyVectorizer) -> "KeyIndex":
        """The index saved in `directory`; RetrievalIndexError if missing, corrupted, or built differently."""
        directory = Path(directory)
        index_path, meta_path = directory / INDEX_FILE, directory / META_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            keys = [OpKey.from_dict(d) for d in meta["keys"]]
            digest, fmt, dim, weights = meta["index_sha256"], meta["format"], meta["dim"], meta["weights"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise RetrievalIndexError(f"{meta_path}: unreadable index metadata ({type(e).__name__}: {e})") from None
        if fmt != FORMAT or dim != vectorizer.dim or weights != vectorizer.weights.to_dict():
            raise RetrievalIndexError(f"{meta_path}: built with format {fmt}, dim {dim}, weights {weights}; "
                                      f"this torch_kevolve wants {FORMAT}, {vectorizer.dim}, {vectorizer.weights}")
        if not index_path.exists() or _sha256(index_path) != digest:
            raise RetrievalIndexError(f"{index_path}: missing, or its sha256 does not match {meta_path}")
        index = cls(vectorizer)
        index._index = faiss.read_index(str(index_path))
        if index._index.ntotal != len(keys) or index._index.d != vectorizer.dim:
            raise RetrievalIndexError(f"{index_path}: holds {index._index.ntotal} vectors of dim {index._index.d}, "
                                      f"metadata lists {len(keys)} keys of dim {vectorizer.dim}")
        index._keys, index._ids = keys, {k.id for k in keys}
        return index

    @classmethod
    def load_or_rebuild(cls, directory: str | os.PathLike, vectorizer: KeyVectorizer,
                        keys: Iterable[OpKey]) -> "KeyIndex":
        """The saved index with any of `keys` it lacks added; rebuilt from `keys` (and saved) if unusable."""
        try:
            index = cls.load(directory, vectorizer)
        except RetrievalIndexError as e:
            if (Path(directory) / META_FILE).exists() or (Path(directory) / INDEX_FILE).exists():
                log.warning("kevolve: rebuilding the retrieval index: %s", e)
            index = cls(vectorizer)
        if index.add(keys) or not (Path(directory) / META_FILE).exists():
            index.save(directory)
        return index


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
