"""The retrieval index over the kernel cache's keys: the shipped one, and the user's beside the user cache."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from .cache import KernelRecord, ShippedStore, UserStore
from .retrieval import KeyIndex, KeyVectorizer, RetrievalIndexError

SHIPPED_INDEX_DIR = Path(__file__).resolve().parent / "retrieval_index" / "shipped_cache"
log = logging.getLogger("torch_kevolve")


def user_index_dir(cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir) / "retrieval"


def key_index(directory: str | os.PathLike, records: list[KernelRecord],
              vectorizer: KeyVectorizer | None = None) -> KeyIndex:
    """The index saved in `directory`, with the keys of `records` it lacks added (rebuilt if damaged)."""
    return KeyIndex.load_or_rebuild(directory, vectorizer or KeyVectorizer(), [r.key for r in records])


def cache_index(store: UserStore, shipped: ShippedStore | None) -> KeyIndex:
    """An index over every key of both caches (the user's only, if `shipped` is None): the shipped index as
    built while the user cache is empty (no writes), else the user's index, kept up to date."""
    shipped_records = shipped.records() if shipped is not None else []
    records = shipped_records + store.records()
    vectorizer = KeyVectorizer()
    if not store.records():
        index = KeyIndex(vectorizer)
        if shipped is not None:
            try:
                index = KeyIndex.load(SHIPPED_INDEX_DIR, vectorizer)
            except RetrievalIndexError as e:
                log.warning("kevolve: the shipped retrieval index is unusable (%s); indexing in memory", e)
        index.add(r.key for r in records)
        return index
    return key_index(user_index_dir(store.directory), records, vectorizer)
