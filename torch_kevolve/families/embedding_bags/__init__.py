"""Batched embedding bags: the kevolve::embedding_bags pattern op (many tables' bags in one call) and its
backward, whose Triton backward computes every table's dense gradient in one stacked pass; and the forms of their
winners that fill kevolve::embedding_bags_stack (the pooled rows behind head rows) or read its gradient in place
(stack_forms.LAYOUT_FORMS)."""
from .family import EMBEDDING_BAGS, EMBEDDING_BAGS_BACKWARD

__all__ = ["EMBEDDING_BAGS", "EMBEDDING_BAGS_BACKWARD"]
