"""Jagged kernel family: one-level jagged <-> padded-dense conversions (`_jagged_to_padded_dense_forward` and its gradient `_padded_dense_to_jagged_forward`)."""
