"""Negative log-likelihood kernel family: `nll_loss_forward` and `nll_loss_backward` (cross-entropy pieces)."""
