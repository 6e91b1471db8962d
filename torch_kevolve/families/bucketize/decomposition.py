"""Bucket indices in other PyTorch ops, which Inductor compiles for any device.

compare: every value against every boundary of its row at once, counting those below it ([.., n, length]
         booleans: for short rows);
halving: the binary search as length.bit_length() vectorised gather-and-compare steps.
The clamped bucket ids (kevolve::bucketize_clamp_offset) are either's buckets, clamped and offset per row.
"""
from __future__ import annotations

import torch

from .calls import BucketizeCall

METHODS = ("halving", "compare")


def _below(boundary: torch.Tensor, value: torch.Tensor, right: bool) -> torch.Tensor:
    """not(boundary >= value) (right: not(boundary > value)): NaN values count every boundary, as in ATen."""
    return ~(boundary > value) if right else ~(boundary >= value)


def bucketize(t: dict, call: BucketizeCall, method: str) -> list[torch.Tensor]:
    wide = torch.float32 if call.compare_dtype in (torch.float16, torch.bfloat16) else call.compare_dtype
    values = t["values"].to(call.compare_dtype).to(wide).reshape(call.rows, call.per_row)
    boundaries = t["boundaries"].to(call.compare_dtype).to(wide).reshape(call.rows, call.length)
    if method == "compare":
        count = _below(boundaries[:, None, :], values[:, :, None], call.right).sum(-1)
    else:
        lo = torch.zeros(values.shape, dtype=torch.int64, device=values.device)
        count = halve(boundaries, values, lo, torch.full_like(lo, call.length), call.length.bit_length(), call.right)
    return [count.to(torch.int32 if call.out_int32 else torch.int64).reshape(call.out_shape)]


def halve(boundaries: torch.Tensor, values: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, steps: int,
          right: bool) -> torch.Tensor:
    """The first position in [lo, hi) of each value's row of `boundaries` ([rows, length]; values, lo and hi
    [rows, n], int64 positions) whose boundary is not below it (hi if none), the intervals halved `steps` times:
    boundaries before lo must be below and those from hi on not."""
    for _ in range(steps):
        active = lo < hi
        mid = (lo + hi) // 2
        below = _below(boundaries.gather(1, mid.clamp(max=boundaries.shape[1] - 1)), values, right)
        lo = torch.where(active & below, mid + 1, lo)
        hi = torch.where(active & ~below, mid, hi)
    return lo


def clamp_offset(t: dict, call: BucketizeCall, method: str) -> list[torch.Tensor]:
    """min(buckets, lengths) + offsets, the buckets found by `method`."""
    (buckets,) = bucketize(t, call, method)
    return [torch.minimum(buckets, t["lengths"]) + t["offsets"]]
