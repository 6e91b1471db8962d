"""The shapes and dtypes ATen gives `_embedding_bag`'s four outputs; they differ between CPU and CUDA.

CUDA: offset2bag [N], bag_size shaped like offsets, max_indices [B, D] (max) or [0], all of the
indices dtype. CPU: offset2bag [0] on the sum fast path (fp32/fp16 table, no padding_idx) else
[N], bag_size [B], max_indices [B, D] (max) or [B], all of the offsets dtype.
(The CPU fast path also needs contiguous per_sample_weights, which the family requires.)
"""
from __future__ import annotations

import torch

from .arguments import MODE_MAX, MODE_SUM

Layout = tuple[tuple[tuple[int, ...], torch.dtype], ...]


def forward_layout(
    weight: torch.Tensor,
    indices: torch.Tensor,
    offsets: torch.Tensor,
    mode: int,
    include_last_offset: bool,
    padding_idx: int,
) -> Layout:
    """(shape, dtype) of output, offset2bag, bag_size and max_indices, as ATen lays them out."""
    num_indices = indices.shape[0]
    num_bags = offsets.shape[0] - include_last_offset
    dim = weight.shape[1]
    max_shape = (num_bags, dim) if mode == MODE_MAX else None
    if offsets.device.type == "cpu":
        sum_fast_path = mode == MODE_SUM and weight.dtype in (torch.float32, torch.float16) and padding_idx < 0
        aux = (((0 if sum_fast_path else num_indices),), (num_bags,), max_shape or (num_bags,))
        aux_dtype = offsets.dtype
    else:
        aux = ((num_indices,), (offsets.shape[0],), max_shape or (0,))
        aux_dtype = indices.dtype
    return ((num_bags, dim), weight.dtype), *((shape, aux_dtype) for shape in aux)


def forward_outputs(
    weight: torch.Tensor,
    indices: torch.Tensor,
    offsets: torch.Tensor,
    mode: int,
    include_last_offset: bool,
    padding_idx: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fresh uninitialised (output, offset2bag, bag_size, max_indices) laid out exactly as ATen's."""
    layout = forward_layout(weight, indices, offsets, mode, include_last_offset, padding_idx)
    return tuple(torch.empty(shape, dtype=dtype, device=weight.device) for shape, dtype in layout)
