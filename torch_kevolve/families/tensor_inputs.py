"""Random tensors of any dtype for family inputs, per distribution (see embedding_bag.inputs for floats).

Integers are drawn from [-5, 5) (bool: fair coins, unsigned: [0, 10)); the edge distribution rounds
floats to a few levels so that ties and exact zeros occur.
"""
from __future__ import annotations

import torch

from .embedding_bag.inputs import FP16_SAFE_SUM, generator, values

__all__ = ["generator", "product_factors", "random_tensor"]


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


def product_factors(shape, dist: str, dtype: torch.dtype, g: torch.Generator, device, reach: int,
                    factors: int = 2) -> torch.Tensor:
    """Factors of products of `factors` terms summed `reach` at a time; large: U(-m, m) with m as large as
    fp16 sums allow."""
    if dist != "large":
        return random_tensor(shape, dist, dtype, g, device, reach)
    m = (FP16_SAFE_SUM / max(reach, 1)) ** (1 / factors)
    return (random_tensor(shape, "uniform", torch.float64, g, device) * m).to(dtype)
