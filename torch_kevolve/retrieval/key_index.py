"""KeyIndex: exact inner-product FAISS index over cache keys, saved as a FAISS file plus JSON metadata.

No pickle: the vectors go through faiss.write_index/read_index, the keys through JSON (each as its canonical
id text, parsed only when a query returns it, so loading stays fast at thousands of keys), and the metadata
holds the index file's sha256, so a corrupted or mismatched pair is refused (and can be rebuilt).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import faiss
import numpy as np

from ..key import OpKey
from ..partial_files import partial_path
from .vectors import KeyVectorizer

FORMAT = 2
INDEX_FILE = "keys.faiss"
META_FILE = "keys.json"
log = logging.getLogger("torch_kevolve")
_SAVING = threading.Lock()  # one save at a time per process


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
        self._ids: list[str] = []  # OpKey.id of each vector, in index order
        self._known: set[str] = set()
        self._parsed: dict[int, OpKey] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def keys(self) -> list[OpKey]:
        return [self._key(i) for i in range(len(self._ids))]

    def _key(self, position: int) -> OpKey:
        if position not in self._parsed:
            try:
                self._parsed[position] = OpKey.from_dict(json.loads(self._ids[position]))
            except (ValueError, KeyError, TypeError) as e:
                raise RetrievalIndexError(f"key {position} of the index is unreadable ({type(e).__name__}: {e})") from None
        return self._parsed[position]

    def add(self, keys: Iterable[OpKey]) -> int:
        """Add the keys not yet indexed; return how many were new."""
        new = []
        for key in keys:
            if key.id not in self._known:
                self._known.add(key.id)
                new.append(key)
        if new:
            self._index.add(np.stack([self.vectorizer(k) for k in new]))
            for key in new:
                self._parsed[len(self._ids)] = key
                self._ids.append(key.id)
        return len(new)

    def nearest(self, key: OpKey, k: int = 5, family: str | None = None, exclude_self: bool = False) -> list[Neighbour]:
        """The k most similar indexed keys (of `family` only, if given), most similar first."""
        if not self._ids:
            return []
        query, wanted = self.vectorizer(key)[None, :], key.id if exclude_self else None
        depth = min(len(self._ids), max(8 * k, 64))
        while True:
            similarities, positions = self._index.search(query, depth)
            found = []
            for similarity, position in zip(similarities[0], positions[0]):
                candidate = self._key(int(position))
                if (family and candidate.family != family) or self._ids[position] == wanted:
                    continue
                found.append(Neighbour(candidate, float(similarity)))
                if len(found) == k:
                    return found
            if depth == len(self._ids):
                return found
            depth = min(len(self._ids), depth * 8)  # the filter left too few: look deeper

    def save(self, directory: str | os.PathLike) -> None:
        """Write the index and its metadata into `directory`, each published whole by os.replace; threads of one
        process save one at a time, so the pair they leave is from one save."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        partial, meta_partial = partial_path(directory / INDEX_FILE), partial_path(directory / META_FILE)
        with _SAVING:
            faiss.write_index(self._index, str(partial))
            meta = {"format": FORMAT, "dim": self.vectorizer.dim, "weights": self.vectorizer.weights.to_dict(),
                    "index_sha256": _sha256(partial), "keys": self._ids}
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
            ids = [str(i) for i in meta["keys"]]
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
        if index._index.ntotal != len(ids) or index._index.d != vectorizer.dim:
            raise RetrievalIndexError(f"{index_path}: holds {index._index.ntotal} vectors of dim {index._index.d}, "
                                      f"metadata lists {len(ids)} keys of dim {vectorizer.dim}")
        index._ids, index._known = ids, set(ids)
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
