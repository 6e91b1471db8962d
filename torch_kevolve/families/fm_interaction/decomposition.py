"""The factorization-machine interaction in other PyTorch ops, which Inductor compiles for any device.

pattern: the ops' plain-ATen meaning, X (Xᵀ Y) through a [B, D, K] product (and its autograd gradient).
gram:    reassociated, (X Xᵀ) Y through a [B, N, N] gram, smaller than [B, D, K] when N² < D K; the backward
         dX = (G Yᵀ + Y Gᵀ) X and dY = (X Xᵀ) G (summed over the batch for a shared Y).
"""
from __future__ import annotations

import torch

from ...patterns import meanings
from .calls import FMCall

METHODS = ("pattern", "gram")


def fm_interaction(t: dict, call: FMCall, method: str) -> list[torch.Tensor]:
    x, y = t["features"], t["projection"]
    if method == "pattern":
        if call.backward:
            return list(meanings.fm_interaction_backward_meaning(t["grad"], x, y))
        return [meanings.fm_interaction_meaning(x, y)]
    gram = torch.matmul(x, x.transpose(1, 2))
    if not call.backward:
        return [torch.matmul(gram, y)]
    g = t["grad"]
    weights = torch.matmul(g, y.transpose(-1, -2)) + torch.matmul(y, g.transpose(1, 2))
    grad_y = torch.matmul(gram, g)
    return [torch.matmul(weights, x), grad_y.sum(0) if call.shared else grad_y]
