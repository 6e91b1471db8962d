"""The retrieval vector of a cache key: weighted text embedding of its operator joined with numeric features."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..key import OpKey
from . import features
from .op_embeddings import TEXT_DIM, OpEmbeddings


@dataclass(frozen=True)
class VectorWeights:
    """Weight of each part of a key's vector (a part's features are scaled by it before normalising)."""

    text: float = 1.0
    shape: float = 2.0
    dtype: float = 0.5
    params: float = 0.5
    device: float = 0.5

    def to_dict(self) -> dict:
        return asdict(self)


class KeyVectorizer:
    """OpKey -> unit float32 vector of length `dim`; inner products of two are their cosine similarity."""

    def __init__(self, embeddings: OpEmbeddings | None = None, weights: VectorWeights = VectorWeights()):
        self.embeddings = embeddings if embeddings is not None else OpEmbeddings()
        self.weights = weights
        self.dim = TEXT_DIM + features.SHAPE_SLOTS + len(features.DTYPES) + 1 + features.PARAM_SLOTS + 3

    def __call__(self, key: OpKey) -> np.ndarray:
        text = self.embeddings.vector(key.op)
        w = self.weights
        vector = np.concatenate([
            w.text * (text if text is not None else np.zeros(TEXT_DIM, dtype=np.float32)),
            w.shape * features.shape_features(key),
            w.dtype * features.dtype_features(key),
            w.params * features.param_features(key),
            w.device * features.device_features(key),
        ]).astype(np.float32)
        return vector / max(float(np.linalg.norm(vector)), 1e-12)
