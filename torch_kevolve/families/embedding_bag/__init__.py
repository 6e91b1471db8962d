"""Embedding-bag kernel families: `aten._embedding_bag` and its dense weight gradient."""
from .family import EMBEDDING_BAG, EMBEDDING_BAG_BACKWARD

__all__ = ["EMBEDDING_BAG", "EMBEDDING_BAG_BACKWARD"]
