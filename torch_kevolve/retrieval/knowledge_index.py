"""KnowledgeIndex: the knowledge base's entries and a fixed vocabulary of diagnosis phrases, embedded ahead
of time (`kevolve index build-knowledge`) so a diagnosis finds its entries without the embedding model.

A diagnosis is a set of phrases of that vocabulary; its query vector is their normalised mean. Entries are
embedded by the text a diagnosis is matched against (KnowledgeEntry.matching_text: title and symptoms). The table
holds each such text's sha256: an edited, added or removed one makes it stale (refused, with a reason).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping, Sequence

import faiss
import numpy as np

from .key_index import RetrievalIndexError
from .op_embeddings import embed, load_model

KNOWLEDGE_TABLE = Path(__file__).resolve().parent.parent / "retrieval_index" / "knowledge.npz"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def build_knowledge_table(entries: Mapping[str, str], phrases: Sequence[str], path: Path = KNOWLEDGE_TABLE,
                          model=None) -> int:
    """Embed every entry's matching text (name -> text) and every phrase; write the fp16 table; return #entries."""
    model = model if model is not None else load_model()
    names = sorted(entries)
    np.savez_compressed(path, names=np.array(names), shas=np.array([_sha(entries[n]) for n in names]),
                        vectors=embed(model, [entries[n] for n in names]).astype(np.float16),
                        phrases=np.array(list(phrases)), phrase_vectors=embed(model, list(phrases)).astype(np.float16))
    return len(names)


class KnowledgeIndex:
    """Ranks knowledge entries against diagnosis phrases by cosine similarity (exact FAISS inner product)."""

    def __init__(self, entries: Mapping[str, str], path: Path = KNOWLEDGE_TABLE):
        if not path.exists():
            raise RetrievalIndexError(f"{path}: no knowledge table (run `kevolve index build-knowledge`)")
        with np.load(path, allow_pickle=False) as data:
            names, shas = [str(n) for n in data["names"]], [str(s) for s in data["shas"]]
            vectors, phrase_vectors = data["vectors"].astype(np.float32), data["phrase_vectors"].astype(np.float32)
            self._phrases = {str(p): i for i, p in enumerate(data["phrases"])}
        current = {name: _sha(text) for name, text in entries.items()}
        if dict(zip(names, shas)) != current:
            changed = sorted(set(current) ^ set(names) | {n for n, s in zip(names, shas) if current.get(n) not in (None, s)})
            raise RetrievalIndexError(f"{path}: stale for the knowledge entries {changed} "
                                      "(run `kevolve index build-knowledge`)")
        self.names = names
        self._phrase_vectors = phrase_vectors
        self._index = faiss.IndexFlatIP(vectors.shape[1])
        self._index.add(vectors)

    def rank(self, phrases: Sequence[str]) -> list[tuple[str, float]]:
        """(entry name, similarity) for every entry, most similar first; [] when no phrase is in the vocabulary."""
        known = [self._phrases[p] for p in phrases if p in self._phrases]
        if not known:
            return []
        query = self._phrase_vectors[known].mean(axis=0)
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        similarities, positions = self._index.search(query[None, :].astype(np.float32), len(self.names))
        return [(self.names[i], float(s)) for s, i in zip(similarities[0], positions[0])]
