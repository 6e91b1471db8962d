"""Batch-norm kernel family: functional batch norm (training and inference) and its backward."""
