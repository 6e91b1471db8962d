"""The dense weight gradient of `aten._embedding_bag` by table row (CSR gather, output-stationary), sum and
mean modes: the indices are sorted by row (row_sort), then one kernel writes every gradient row once.

gather_rows_kernel: one program per ROWS consecutive table rows x BLOCK_D columns gathers its rows' slots
k = 0, 1, ... (all its rows at once, up to their largest count), sums in fp32 and stores the whole tile once,
zeros included, in the grad dtype: no zero fill, no atomics, int64 row offsets.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .row_sort import sort_by_row


@triton.jit
def gather_rows_kernel(
    grad_ptr,  # [num_bags, dim], strides (stride_gb, stride_gd)
    counts_ptr,  # [num_weights] int32 slots of each row
    firsts_ptr,  # [num_weights] int32 first slot of each row
    sorted_bags_ptr,  # [num_indices] bag of each slot
    sorted_scale_ptr,  # [num_indices] fp32 factor of each slot
    out_ptr,  # [num_weights, dim] in the grad dtype, every element written here
    num_weights,
    dim,
    padding_idx,
    stride_gb,
    stride_gd,
    ROWS: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """One program per ROWS table rows x BLOCK_D columns: step k adds the k-th slot's scaled grad row to
    every row with more than k slots; the fp32 tile is stored once (zeros for untouched rows and
    padding_idx's). No atomics, any output dtype."""
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    row_mask = rows < num_weights
    d_mask = d < dim
    counts = tl.load(counts_ptr + rows, mask=row_mask & (rows != padding_idx), other=0)
    firsts = tl.load(firsts_ptr + rows, mask=row_mask, other=0)
    acc = tl.zeros([ROWS, BLOCK_D], dtype=tl.float32)
    for k in range(0, tl.max(counts, axis=0)):
        live = k < counts
        bag = tl.load(sorted_bags_ptr + firsts + k, mask=live, other=0).to(tl.int64)
        scale = tl.load(sorted_scale_ptr + firsts + k, mask=live, other=0.0)
        g = tl.load(grad_ptr + bag[:, None] * stride_gb + d[None, :] * stride_gd,
                    mask=live[:, None] & d_mask[None, :], other=0.0)
        acc += g.to(tl.float32) * scale[:, None]
    out = out_ptr + rows.to(tl.int64)[:, None] * dim + d[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=row_mask[:, None] & d_mask[None, :])


def embedding_bag_backward_rows(grad: torch.Tensor, indices: torch.Tensor, offsets: torch.Tensor,
                                per_sample_weights: torch.Tensor | None, num_weights: int, mode: int,
                                padding_idx: int, genome: dict) -> torch.Tensor:
    """The dense weight gradient [num_weights, dim] in the grad dtype (sum or mean mode; padding_idx -1 for
    none). grad: [num_bags, dim]; offsets: [num_bags (+1)] first index position of each bag.
    genome: ROWS, BLOCK_D, num_warps, num_stages."""
    dim = grad.shape[1]
    by_row = sort_by_row(grad, indices, offsets, per_sample_weights, num_weights, mode, padding_idx)
    out = torch.empty(num_weights, dim, dtype=grad.dtype, device=grad.device)
    launch(
        gather_rows_kernel,
        (triton.cdiv(num_weights, genome["ROWS"]), triton.cdiv(dim, genome["BLOCK_D"])),
        grad,
        by_row.counts,
        by_row.firsts,
        by_row.bags,
        by_row.scale,
        out,
        num_weights,
        dim,
        padding_idx,
        grad.stride(0),
        grad.stride(1),
        ROWS=genome["ROWS"],
        BLOCK_D=genome["BLOCK_D"],
        num_warps=genome["num_warps"],
        num_stages=genome["num_stages"],
    )
    return out
