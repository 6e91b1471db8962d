"""A linear layer of one output over every position of a sequence (an attention's score head, [B, L, K] -> [B, L,
1]) as a product and a sum. As a matrix product it is a memory-bound matrix-vector product that Inductor hands to
cuBLAS, so the activation before it is written out by one kernel and read back by another (and the same for its
gradient); as `(x * w).sum(-1)` Inductor fuses it with that activation into one reduction that reads x once.
"""
from __future__ import annotations

import torch


def score_head(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """F.linear(x, weight, bias) for a weight [1, K]: (x * weight[0]).sum(-1, keepdim=True) (+ bias)."""
    scores = (x * weight[0]).sum(-1, keepdim=True)
    return scores if bias is None else scores + bias
