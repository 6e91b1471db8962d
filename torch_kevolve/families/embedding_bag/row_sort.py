"""The indices of one embedding-bag backward grouped by table row (a counting sort on the GPU): histogram
(count_rows_kernel), prefix sum, one slot claimed per index (place_entries_kernel).

backward_triton._segment still does the same sort inline: it is kept byte-identical so that the shipped H100
records of embedding_bag_backward_triton stay current. The two should merge at backward_triton's next change.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import triton

from ..triton_launch import launch
from .backward_triton import COUNT_BLOCK, PLACE_BLOCK, count_rows_kernel, place_entries_kernel


class RowSort(NamedTuple):
    """Row r's slots are [firsts[r], firsts[r] + counts[r]), in no fixed order within the row."""

    counts: torch.Tensor  # [num_weights] int32
    firsts: torch.Tensor  # [num_weights] int32
    rows: torch.Tensor  # [num_indices] the row of each slot
    bags: torch.Tensor  # [num_indices] int32 the bag of each slot
    scale: torch.Tensor  # [num_indices] fp32 factor of each slot (per-sample weight, 1/bag size, or 1)


def sort_by_row(grad: torch.Tensor, indices: torch.Tensor, offsets: torch.Tensor,
                per_sample_weights: torch.Tensor | None, num_weights: int, mode: int, padding_idx: int) -> RowSort:
    """The slots of the indices grouped by row (sum or mean mode). grad: [num_bags, dim] (its bag count and
    device); offsets: [num_bags (+1)] first index position of each bag, a trailing entry ignored."""
    num_bags = grad.shape[0]
    num_indices = indices.numel()
    counts = torch.zeros(num_weights, dtype=torch.int32, device=grad.device)
    launch(count_rows_kernel, (triton.cdiv(num_indices, COUNT_BLOCK),), indices, counts, num_indices, BLOCK=COUNT_BLOCK,
           num_warps=4, num_stages=1)
    firsts = torch.cumsum(counts, 0, dtype=torch.int32)  # row ends, until place_entries_kernel claims the slots
    rows = torch.empty_like(indices)
    bags = torch.empty(num_indices, dtype=torch.int32, device=grad.device)
    scale = torch.empty(num_indices, dtype=torch.float32, device=grad.device)
    launch(
        place_entries_kernel,
        (num_bags,),
        indices,
        offsets,
        per_sample_weights,
        firsts,
        rows,
        bags,
        scale,
        num_indices,
        num_bags,
        padding_idx,
        MODE=mode,
        HAS_PSW=per_sample_weights is not None,
        BLOCK=PLACE_BLOCK,
        num_warps=1,
        num_stages=1,
    )
    return RowSort(counts, firsts, rows, bags, scale)
