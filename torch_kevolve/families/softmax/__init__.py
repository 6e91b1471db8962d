"""Softmax kernel family: `_softmax`, `_log_softmax` and their backward (`_*_softmax_backward_data`)."""
