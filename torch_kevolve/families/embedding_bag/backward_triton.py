"""Triton weight gradient of `aten._embedding_bag` (dense), two algorithms chosen by the genome.

atomic: one program per BAGS (ITEMS_PER_PROGRAM) x BLOCK_D slice scatters its bags' scaled grad
        rows with atomic adds into a zeroed fp32 buffer (cast to the grad dtype afterwards).
segment: a counting sort groups the indices by table row (histogram, prefix sum, atomic slot
         claims); tiles of ITEMS_PER_PROGRAM slots sum each run of equal rows with a segmented
         scan and write its row once; untouched rows are zeroed by a second kernel. Every row is
         written once, in the grad dtype (no fp32 buffer, no float atomics). Sum and mean only.
The bag of each index comes from the offsets; offset2bag and bag_size are never trusted, and max
mode skips bags without non-padding indices whatever maximum_indices holds for them.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from . import bags

ALGORITHMS = ("segment", "atomic")
ZERO_ROWS = 32  # table rows per program of the zero fill
COUNT_BLOCK = 1024  # indices per program of the row histogram
PLACE_BLOCK = 32  # indices per step of the counting sort (bags of DLRM are 1 to a few hundred long)


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
def count_rows_kernel(indices_ptr, counts_ptr, num_indices, BLOCK: tl.constexpr):
    """counts[row] += 1 for every index (a histogram of the table rows the indices name)."""
    n = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    n_mask = n < num_indices
    idx = tl.load(indices_ptr + n, mask=n_mask, other=0)
    tl.atomic_add(counts_ptr + idx, 1, mask=n_mask, sem="relaxed")


@triton.jit
def place_entries_kernel(
    indices_ptr,  # [num_indices]
    offsets_ptr,  # [num_bags (+1)]
    psw_ptr,  # [num_indices] per-sample weights (read when HAS_PSW)
    ends_ptr,  # [num_weights] int32, one past the last slot of each row; left holding each row's first slot
    sorted_rows_ptr,  # [num_indices] out: the row of each slot (grouped by row)
    sorted_bags_ptr,  # [num_indices] out: the bag of each slot
    sorted_scale_ptr,  # [num_indices] out: fp32 factor of each slot (per-sample weight, 1/bag size, or 1)
    num_indices,
    num_bags,
    padding_idx,
    MODE: tl.constexpr,  # 0 sum, 1 mean
    HAS_PSW: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Counting sort, one program per bag: every index takes a slot of its row's range (in no fixed order)."""
    bag = tl.program_id(0)
    start = tl.load(offsets_ptr + bag).to(tl.int64)
    end = tl.load(offsets_ptr + bag + 1, mask=bag + 1 < num_bags, other=num_indices).to(tl.int64)
    scale = tl.full([BLOCK], 1.0, dtype=tl.float32)
    if MODE == 1:
        count = tl.zeros([], dtype=tl.int32)
        for k in range(start, end, BLOCK):
            n = k + tl.arange(0, BLOCK)
            idx = tl.load(indices_ptr + n, mask=n < end, other=padding_idx)
            count += tl.sum(((n < end) & (idx != padding_idx)).to(tl.int32), axis=0)
        scale = scale / tl.maximum(count, 1).to(tl.float32)
    for k in range(start, end, BLOCK):
        n = k + tl.arange(0, BLOCK)
        n_mask = n < end
        idx = tl.load(indices_ptr + n, mask=n_mask, other=0)
        slot = tl.atomic_add(ends_ptr + idx, -1, mask=n_mask, sem="relaxed") - 1
        tl.store(sorted_rows_ptr + slot, idx, mask=n_mask)
        tl.store(sorted_bags_ptr + slot, tl.zeros([BLOCK], dtype=tl.int32) + bag, mask=n_mask)
        if HAS_PSW:
            scale = tl.load(psw_ptr + n, mask=n_mask, other=0.0).to(tl.float32)
        tl.store(sorted_scale_ptr + slot, scale, mask=n_mask)


@triton.jit
def _sum_within_run(sum_a, row_a, sum_b, row_b):
    return tl.where(row_a == row_b, sum_a + sum_b, sum_b), row_b


@triton.jit
def reduce_runs_kernel(
    grad_ptr,  # [num_bags, dim], strides (stride_gb, stride_gd)
    sorted_rows_ptr,  # [num_indices] table rows, equal rows adjacent
    sorted_bags_ptr,  # [num_indices] bag of each slot
    sorted_scale_ptr,  # [num_indices] fp32 factor of each slot
    out_ptr,  # [num_weights, dim] in the grad dtype; rows not written here are zeroed elsewhere
    num_indices,
    dim,
    padding_idx,
    stride_gb,
    stride_gd,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    SLOTS: tl.constexpr,
):
    """One program per SLOTS consecutive slots: a segmented scan sums each run of equal rows within the
    tile and the run's last slot writes its table row. A run belongs to the tile where it starts; the
    tile's last run, if it goes on, is finished BLOCK_N slots at a time. No atomics, any output dtype."""
    first = tl.program_id(0) * SLOTS
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    d_mask = d < dim
    s = first + tl.arange(0, SLOTS)
    s_mask = s < num_indices
    row = tl.load(sorted_rows_ptr + s, mask=s_mask, other=-1)
    next_row = tl.load(sorted_rows_ptr + s + 1, mask=s + 1 < num_indices, other=-1)
    first_row = tl.load(sorted_rows_ptr + first)
    # The tile's first run belongs to the tile before when it started there (-1: no such row).
    previous_row = tl.load(sorted_rows_ptr + first - 1, mask=first > 0, other=-1)
    inherited_row = tl.where(previous_row == first_row, first_row, -1)
    bag = tl.load(sorted_bags_ptr + s, mask=s_mask, other=0).to(tl.int64)
    scale = tl.load(sorted_scale_ptr + s, mask=s_mask, other=0.0)
    g = tl.load(
        grad_ptr + bag[:, None] * stride_gb + d[None, :] * stride_gd, mask=s_mask[:, None] & d_mask[None, :], other=0.0
    ).to(tl.float32)
    run_sums, _ = tl.associative_scan(
        (g * scale[:, None], tl.broadcast_to(row[:, None], [SLOTS, BLOCK_D])), 0, _sum_within_run
    )
    owned = (row != inherited_row) & (row != padding_idx)
    out = out_ptr + row.to(tl.int64)[:, None] * dim + d[None, :]
    ends_here = s_mask & (row != next_row) & owned
    tl.store(out, run_sums.to(out_ptr.dtype.element_ty), mask=ends_here[:, None] & d_mask[None, :])
    last = first + SLOTS - 1
    if last + 1 < num_indices:
        last_row = tl.load(sorted_rows_ptr + last)
        goes_on = tl.load(sorted_rows_ptr + last + 1) == last_row
        if goes_on & (last_row != inherited_row) & (last_row != padding_idx):
            acc = tl.sum(tl.where((s == last)[:, None], run_sums, 0.0), axis=0)
            k = (last + 1).to(tl.int64)
            while goes_on:
                n = k + tl.arange(0, BLOCK_N)
                same = tl.load(sorted_rows_ptr + n, mask=n < num_indices, other=-1) == last_row
                run_bag = tl.load(sorted_bags_ptr + n, mask=same, other=0).to(tl.int64)
                run_scale = tl.load(sorted_scale_ptr + n, mask=same, other=0.0)
                run_g = tl.load(
                    grad_ptr + run_bag[:, None] * stride_gb + d[None, :] * stride_gd,
                    mask=same[:, None] & d_mask[None, :],
                    other=0.0,
                ).to(tl.float32)
                acc += tl.sum(run_g * run_scale[:, None], axis=0)
                k += BLOCK_N
                # Equal rows are adjacent: the run goes on only if the whole block matched.
                goes_on = tl.sum(same.to(tl.int32), axis=0) == BLOCK_N
            tl.store(out_ptr + last_row.to(tl.int64) * dim + d, acc.to(out_ptr.dtype.element_ty), mask=d_mask)


@triton.jit
def zero_untouched_rows_kernel(
    counts_ptr,  # [num_weights] indices per table row
    out_ptr,  # [num_weights, dim]
    num_weights,
    dim,
    padding_idx,
    ROWS: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Zeros the rows no index names (and padding_idx's): with reduce_runs_kernel, every row written once."""
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    counts = tl.load(counts_ptr + rows, mask=rows < num_weights, other=1)
    untouched = (rows < num_weights) & ((counts == 0) | (rows == padding_idx))
    zeros = tl.zeros([ROWS, BLOCK_D], dtype=out_ptr.dtype.element_ty)
    tl.store(out_ptr + rows.to(tl.int64)[:, None] * dim + d[None, :], zeros, mask=untouched[:, None] & (d < dim)[None, :])


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
    if genome["algorithm"] == "segment":
        return _segment(grad, indices, offsets, per_sample_weights, num_weights, mode, padding_idx, genome)
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


def _segment(grad, indices, offsets, per_sample_weights, num_weights, mode, padding_idx, genome):
    """Counting sort of the indices by row; every gradient row written once (its run's sum, or zeros)."""
    num_bags, dim = grad.shape
    num_indices = indices.numel()
    counts = torch.zeros(num_weights, dtype=torch.int32, device=grad.device)
    launch(count_rows_kernel, (triton.cdiv(num_indices, COUNT_BLOCK),), indices, counts, num_indices, BLOCK=COUNT_BLOCK,
           num_warps=4, num_stages=1)
    ends = torch.cumsum(counts, 0, dtype=torch.int32)
    sorted_rows = torch.empty_like(indices)
    sorted_bags = torch.empty(num_indices, dtype=torch.int32, device=grad.device)
    sorted_scale = torch.empty(num_indices, dtype=torch.float32, device=grad.device)
    launch(
        place_entries_kernel,
        (num_bags,),
        indices,
        offsets,
        per_sample_weights,
        ends,
        sorted_rows,
        sorted_bags,
        sorted_scale,
        num_indices,
        num_bags,
        padding_idx,
        MODE=mode,
        HAS_PSW=per_sample_weights is not None,
        BLOCK=PLACE_BLOCK,
        num_warps=1,
        num_stages=1,
    )
    out = torch.empty(num_weights, dim, dtype=grad.dtype, device=grad.device)
    launch(
        zero_untouched_rows_kernel,
        (triton.cdiv(num_weights, ZERO_ROWS), triton.cdiv(dim, genome["BLOCK_D"])),
        counts,
        out,
        num_weights,
        dim,
        padding_idx,
        ROWS=ZERO_ROWS,
        BLOCK_D=genome["BLOCK_D"],
        num_warps=4,
        num_stages=1,
    )
    grid = (triton.cdiv(num_indices, genome["ITEMS_PER_PROGRAM"]), triton.cdiv(dim, genome["BLOCK_D"]))
    launch(
        reduce_runs_kernel,
        grid,
        grad,
        sorted_rows,
        sorted_bags,
        sorted_scale,
        out,
        num_indices,
        dim,
        padding_idx,
        grad.stride(0),
        grad.stride(1),
        BLOCK_N=genome["BLOCK_N"],
        BLOCK_D=genome["BLOCK_D"],
        SLOTS=genome["ITEMS_PER_PROGRAM"],
        num_warps=genome["num_warps"],
        num_stages=genome["num_stages"],
    )
    return out
