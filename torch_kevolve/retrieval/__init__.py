"""Retrieval: vectors of cache keys (operator text embedding + numeric features) and FAISS indexes over them."""
from .key_index import KeyIndex, Neighbour, RetrievalIndexError
from .op_embeddings import OpEmbeddings, build_table
from .vectors import KeyVectorizer, VectorWeights

__all__ = ["KeyIndex", "KeyVectorizer", "Neighbour", "OpEmbeddings", "RetrievalIndexError", "VectorWeights",
           "build_table"]
