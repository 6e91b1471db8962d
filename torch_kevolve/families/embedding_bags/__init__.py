"""Batched embedding bags: the kevolve::embedding_bags pattern op (many tables' bags in one call) and its
backward, whose Triton backward computes every table's dense gradient in one stacked pass."""
from .family import EMBEDDING_BAGS, EMBEDDING_BAGS_BACKWARD

__all__ = ["EMBEDDING_BAGS", "EMBEDDING_BAGS_BACKWARD"]
