"""Triton weight gradient of `aten._embedding_bag` (dense), two algorithms chosen by the genome.

atomic: one program per BAGS (ITEMS_PER_PROGRAM) x BLOCK_D slice scatters its bags' scaled grad
        rows with atomic adds into a zeroed fp32 buffer (cast to the grad dtype afterwards).
sorted: indices sorted in the launcher; one program per ITEMS_PER_PROGRAM (>= 16) table rows
        reduces the segments of equal indices of its rows without atomics and writes every row
        exactly once (zeros where untouched). Sum and mean only.
The bag of each index comes from the offsets; offset2bag and bag_size are never trusted, and max
mode skips bags without non-padding indices whatever maximum_indices holds for them.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from . import bags
from .arguments import MODE_MEAN

ALGORITHMS = ("atomic", "sorted")


@triton.jit
def embedding_bag_backward_atomic_kernel(
    grad_ptr,  # [num_bags, dim], strides (stride_gb, stride_gd)
    indices_ptr,  # [num_indices]
    offsets_ptr,  # [num_bags (+1)] first index position of each bag
    psw_ptr,  # [num_indices] per-sample weights (read when HAS_PSW)
    max_indices_ptr,  # [num_bags, dim] argmax table rows (read when MODE == 2)
    acc_ptr,  # [num_weights, dim] fp32, zeroed
    num_indices,
    num_bags,
    dim,
    padding_idx,
    stride_gb,
    stride_gd,
    MODE: tl.constexpr,  # 0 sum, 1 mean, 2 max
    HAS_PSW: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BAGS_PER_PROGRAM: tl.constexpr,
):
    pid_bag = tl.program_id(0)
    pid_d = tl.program_id(1)
    d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    d_mask = d < dim
    for j in range(BAGS_PER_PROGRAM):
        bag = pid_bag * BAGS_PER_PROGRAM + j
        if bag < num_bags:
            start = tl.load(offsets_ptr + bag).to(tl.int64)
            end = tl.load(offsets_ptr + bag + 1, mask=bag + 1 < num_bags, other=num_indices).to(tl.int64)
            g = tl.load(grad_ptr + bag.to(tl.int64) * stride_gb + d * stride_gd, mask=d_mask, other=0.0)
            g = g.to(tl.float32)
            if MODE != 0:
                # Mean divides by, and max skips bags without, non-padding indices.
                count = tl.zeros([], dtype=tl.int32)
                for k in range(start, end, BLOCK_N):
                    n = k + tl.arange(0, BLOCK_N)
                    idx = tl.load(indices_ptr + n, mask=n < end, other=padding_idx)
                    count += tl.sum(((n < end) & (idx != padding_idx)).to(tl.int32), axis=0)
            if MODE == 2:
                if count > 0:
                    row = tl.load(max_indices_ptr + bag.to(tl.int64) * dim + d, mask=d_mask, other=-1).to(tl.int64)
                    hit = d_mask & (row >= 0) & (row != padding_idx)
                    tl.atomic_add(acc_ptr + row * dim + d, g, mask=hit, sem="relaxed")
            else:
                if MODE == 1:
                    g = g / tl.maximum(count, 1).to(tl.float32)
                for k in range(start, end, BLOCK_N):
                    n = k + tl.arange(0, BLOCK_N)
                    n_mask = n < end
                    idx = tl.load(indices_ptr + n, mask=n_mask, other=0).to(tl.int64)
                    keep = n_mask & (idx != padding_idx)
                    contrib = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32) + g[None, :]
                    if HAS_PSW:
                        scale = tl.load(psw_ptr + n, mask=keep, other=0.0).to(tl.float32)
                        contrib = contrib * scale[:, None]
                    tl.atomic_add(
                        acc_ptr + idx[:, None] * dim + d[None, :],
                        contrib,
                        mask=keep[:, None] & d_mask[None, :],
                        sem="relaxed",
                    )


@triton.jit
def embedding_bag_backward_sorted_kernel(
    grad_ptr,  # [num_bags, dim], strides (stride_gb, stride_gd)
    sorted_rows_ptr,  # [num_indices] table rows, sorted
    sorted_bags_ptr,  # [num_indices] bag of each sorted entry
    sorted_scale_ptr,  # [num_indices] fp32 factor of each sorted entry (read when HAS_SCALE)
    row_starts_ptr,  # [num_weights + 1] first sorted entry of each table row
    out_ptr,  # [num_weights, dim] in the grad dtype, every element written once
    num_weights,
    dim,
    padding_idx,
    stride_gb,
    stride_gd,
    HAS_SCALE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    ROWS_PER_PROGRAM: tl.constexpr,
):
    pid_row = tl.program_id(0)
    pid_d = tl.program_id(1)
    d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    d_mask = d < dim
    first_row = pid_row * ROWS_PER_PROGRAM
    rows = first_row + tl.arange(0, ROWS_PER_PROGRAM)
    # The program's rows own one contiguous run of sorted entries, reduced BLOCK_N entries at a time:
    # a one-hot [rows, entries] matrix times the entries' scaled grad rows adds each entry to its row.
    lo = tl.load(row_starts_ptr + first_row).to(tl.int64)
    hi = tl.load(row_starts_ptr + tl.minimum(first_row + ROWS_PER_PROGRAM, num_weights)).to(tl.int64)
    acc = tl.zeros([ROWS_PER_PROGRAM, BLOCK_D], dtype=tl.float32)
    for q in range(lo, hi, BLOCK_N):
        p = q + tl.arange(0, BLOCK_N)
        p_mask = p < hi
        row = tl.load(sorted_rows_ptr + p, mask=p_mask, other=-1)
        bag = tl.load(sorted_bags_ptr + p, mask=p_mask, other=0).to(tl.int64)
        use = p_mask & (row != padding_idx)
        g = tl.load(
            grad_ptr + bag[:, None] * stride_gb + d[None, :] * stride_gd,
            mask=use[:, None] & d_mask[None, :],
            other=0.0,
        ).to(tl.float32)
        if HAS_SCALE:
            g = g * tl.load(sorted_scale_ptr + p, mask=use, other=0.0)[:, None]
        one_hot = (rows[:, None] == row[None, :]).to(tl.float32)
        acc = tl.dot(one_hot, g, acc, input_precision="ieee")
    out = out_ptr + rows.to(tl.int64)[:, None] * dim + d[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=(rows < num_weights)[:, None] & d_mask[None, :])


def embedding_bag_backward(
    grad: torch.Tensor,
    indices: torch.Tensor,
    offsets: torch.Tensor | None,
    offset2bag: torch.Tensor,
    max_indices: torch.Tensor,
    per_sample_weights: torch.Tensor | None,
    num_weights: int,
    mode: int,
    padding_idx: int,
    genome: dict,
) -> torch.Tensor:
    """The dense weight gradient [num_weights, dim] in the grad dtype.

    Bags come from `offsets`, or from `offset2bag` when offsets is None (dense-backward overload).
    """
    num_bags, dim = grad.shape
    if offsets is None:
        offsets = bags.offsets_from_offset2bag(offset2bag, num_bags)
    if genome["algorithm"] == "sorted":
        return _sorted(grad, indices, offsets, per_sample_weights, num_weights, mode, padding_idx, genome)
    return _atomic(grad, indices, offsets, max_indices, per_sample_weights, num_weights, mode, padding_idx, genome)


def _atomic(grad, indices, offsets, max_indices, per_sample_weights, num_weights, mode, padding_idx, genome):
    """Zeroed fp32 buffer, atomic scatter of every bag's grad row, cast to the grad dtype."""
    num_bags, dim = grad.shape
    acc = torch.zeros(num_weights, dim, dtype=torch.float32, device=grad.device)
    grid = (triton.cdiv(num_bags, genome["ITEMS_PER_PROGRAM"]), triton.cdiv(dim, genome["BLOCK_D"]))
    launch(
        embedding_bag_backward_atomic_kernel,
        grid,
        grad,
        indices,
        offsets,
        per_sample_weights,
        max_indices,
        acc,
        indices.numel(),
        num_bags,
        dim,
        padding_idx,
        grad.stride(0),
        grad.stride(1),
        MODE=mode,
        HAS_PSW=per_sample_weights is not None,
        BLOCK_N=genome["BLOCK_N"],
        BLOCK_D=genome["BLOCK_D"],
        BAGS_PER_PROGRAM=genome["ITEMS_PER_PROGRAM"],
        num_warps=genome["num_warps"],
        num_stages=genome["num_stages"],
    )
    return acc if grad.dtype == torch.float32 else acc.to(grad.dtype)


def _sorted(grad, indices, offsets, per_sample_weights, num_weights, mode, padding_idx, genome):
    """Stable sort of the indices (with each entry's bag and scale), then one write per table row."""
    num_bags, dim = grad.shape
    # 32-bit keys sort about 1.6x faster than 64-bit ones (measured on H100).
    keys = indices.to(torch.int32) if num_weights <= torch.iinfo(torch.int32).max else indices
    sorted_rows, positions = torch.sort(keys, stable=True)
    table_rows = torch.arange(num_weights + 1, dtype=keys.dtype, device=keys.device)
    row_starts = torch.searchsorted(sorted_rows, table_rows, out_int32=keys.dtype == torch.int32)
    sorted_bags = bags.bag_of(offsets, num_bags, positions)
    sorted_scale = None
    if mode == MODE_MEAN:
        sizes = bags.bag_sizes(sorted_bags, sorted_rows, padding_idx, num_bags)
        sorted_scale = 1.0 / sizes.clamp(min=1).float()[sorted_bags]
    elif per_sample_weights is not None:
        sorted_scale = per_sample_weights.float()[positions]
    out = torch.empty(num_weights, dim, dtype=grad.dtype, device=grad.device)
    grid = (triton.cdiv(num_weights, genome["ITEMS_PER_PROGRAM"]), triton.cdiv(dim, genome["BLOCK_D"]))
    launch(
        embedding_bag_backward_sorted_kernel,
        grid,
        grad,
        sorted_rows,
        sorted_bags,
        sorted_scale,
        row_starts,
        out,
        num_weights,
        dim,
        padding_idx,
        grad.stride(0),
        grad.stride(1),
        HAS_SCALE=sorted_scale is not None,
        BLOCK_N=genome["BLOCK_N"],
        BLOCK_D=genome["BLOCK_D"],
        ROWS_PER_PROGRAM=genome["ITEMS_PER_PROGRAM"],
        num_warps=genome["num_warps"],
        num_stages=genome["num_stages"],
    )
    return out
