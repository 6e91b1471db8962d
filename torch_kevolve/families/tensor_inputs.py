"""Random tensors of any dtype for family inputs, per distribution (see embedding_bag.inputs for floats).

Integers are drawn from [-5, 5) (bool: fair coins, unsigned: [0, 10)); the edge distribution rounds
floats to a few levels so that ties and exact zeros occur.
"""
from __future__ import annotations

import torch

from .embedding_bag.inputs import generator, values

__all__ = ["generator", "random_tensor"]


def random_tensor(shape, dist: str, dtype: torch.dtype, g: torch.Generator, device, reach: int = 1) -> torch.Tensor:
    """A tensor of `shape` and `dtype` drawn from `dist`; `reach`: terms one output sums (bounds 'large')."""
    if dtype == torch.bool:
        return torch.rand(shape, generator=g, device=device) < 0.5
    if not dtype.is_floating_point:
        low = 0 if dtype == torch.uint8 else -5
        return torch.randint(low, low + 10, shape, generator=g, device=device).to(dtype)
    out = values(shape, dist, reach, torch.float64, g, device)
    if dist == "edge":
        out = out.mul(2).round().div(2)
    return out.to(dtype)
