"""Triton dense weight gradients of kevolve::embedding_bags_backward by the fill-runs algorithm: backward_runs with
its zero fill folded into the run pass, so the gradient is written by one pass in row order.

    sort_slots               backward_sweep's count, prefix sums and place over bag tiles (stacked: one int64 key
                             per slot, its row << 32 | its bag's number)
    fill_runs_kernel         program p owns SLOTS consecutive slots: backward_triton's reduce_runs segmented scan, read
                             from the keys (no split of them into rows and bags, and sums read no scale), sums and
                             writes the runs it owns, then the program zeroes the rows between each run ending in its
                             tile and the next run (or the end of the rows), program 0 also those before the first
                             run; at most GAP_LIMIT rows of a gap, the rest of a longer gap is listed
    zero_listed_gaps_kernel  LIST_PROGRAMS programs share the rows of every listed gap (none where the indices
                             spread over the rows, as a DLRM's do: a fixed launch that reads one count)

backward_runs zeroes the untouched rows in a kernel of its own before the run pass (212 us of the DLRM's H100
training step, against 374 us for the run pass; benchmarks/results/README.md): here each program's zero rows lie
between the rows its runs write. Every row is written once, in the grad dtype, without float atomics.
backward_triton.reduce_runs_kernel is the same scan over split rows, bags and scales (the runs algorithm's): it is
kept as is so that the shipped records of embedding_bag_backward_triton stay current; the two should merge at
backward_triton's next change.
"""
from __future__ import annotations

from typing import Sequence

import torch
import triton
import triton.language as tl

from ..embedding_bag.backward_triton import _sum_within_run
from ..triton_launch import launch
from .backward_sweep import SortedSlots, consecutive_bags, sort_slots

GAP_ROWS = 4  # rows per step of a gap's zero fill in fill_runs_kernel
GAP_LIMIT = 64  # rows of one gap zeroed by fill_runs_kernel; the rest go to zero_listed_gaps_kernel
LIST_ROWS = 16  # rows per step of zero_listed_gaps_kernel
LIST_PROGRAMS = 256  # programs of zero_listed_gaps_kernel (a share of every listed gap each)


@triton.jit
def zero_gaps(out_ptr, starts, ends, gap_count_ptr, gap_bounds_ptr, dim, d, d_mask, GAP_ROWS: tl.constexpr,
              GAP_LIMIT: tl.constexpr):
    """Zero rows [starts, ends) of out (int64 vectors, empty where starts == ends) over this program's d slice, at
    most GAP_LIMIT rows of each; where program_id(1) == 0, list the rest of each longer gap (its first and end row
    at entry gap_count++ of gap_bounds)."""
    lengths = ends - starts
    near = tl.minimum(lengths, GAP_LIMIT)
    zeros = tl.zeros([starts.shape[0], GAP_ROWS, d.shape[0]], dtype=out_ptr.dtype.element_ty)
    for g in range(0, tl.max(near, axis=0), GAP_ROWS):
        j = g + tl.arange(0, GAP_ROWS)
        rows = starts[:, None] + j[None, :]
        live = j[None, :] < near[:, None]
        tl.store(out_ptr + rows[:, :, None] * dim + d[None, None, :], zeros,
                 mask=live[:, :, None] & d_mask[None, None, :])
    if tl.program_id(1) == 0:
        far = lengths > GAP_LIMIT
        entry = tl.atomic_add(gap_count_ptr + tl.zeros_like(starts), 1, mask=far, sem="relaxed").to(tl.int64)
        tl.store(gap_bounds_ptr + 2 * entry, starts + GAP_LIMIT, mask=far)
        tl.store(gap_bounds_ptr + 2 * entry + 1, ends, mask=far)


@triton.jit
def scaled_rows(grad_ptr, scale_ptr, bag, n, live, d, d_mask, stride_gb, stride_gd, SCALED: tl.constexpr):
    """[len(n), BLOCK_D] fp32: slot n's gradient row `bag` over this d slice (times its scale where SCALED), 0 where
    not live."""
    g = tl.load(grad_ptr + bag[:, None] * stride_gb + d[None, :] * stride_gd, mask=live[:, None] & d_mask[None, :],
                other=0.0).to(tl.float32)
    if SCALED:
        g = g * tl.load(scale_ptr + n, mask=live, other=0.0)[:, None]
    return g


@triton.jit
def fill_runs_kernel(grad_ptr, keys_ptr, scale_ptr, out_ptr, gap_count_ptr, gap_bounds_ptr, num_slots, num_rows, dim,
                     stride_gb, stride_gd, SCALED: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                     SLOTS: tl.constexpr, GAP_ROWS: tl.constexpr, GAP_LIMIT: tl.constexpr):
    """Program (p, d slice) owns slots [p * SLOTS, ...) of the sorted keys (row << 32 | bag number, num_slots >= 1,
    rows in [0, num_rows)): a segmented scan sums each run of equal rows in the tile, the run's last slot writes its
    row; the tile's last run, if it goes on, is finished BLOCK_N slots at a time; a run belongs to the tile where it
    starts. Then the zero rows after each run ending in the tile (and, in program 0, before the first run).
    (The key loads stay inline: Inductor's analysis of user kernels would take values returned by a call for
    pointers the stores depend on.)"""
    first = tl.program_id(0) * SLOTS
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    d_mask = d < dim
    s = first + tl.arange(0, SLOTS)
    s_mask = s < num_slots
    key = tl.load(keys_ptr + s, mask=s_mask, other=-1)  # row -1 past the slots
    row = key >> 32
    next_row = tl.load(keys_ptr + s + 1, mask=s + 1 < num_slots, other=-1) >> 32
    next_row = tl.where(s + 1 < num_slots, next_row, num_rows)
    first_row = tl.load(keys_ptr + first) >> 32
    previous_row = tl.load(keys_ptr + first - 1, mask=first > 0, other=-1) >> 32
    inherited_row = tl.where(previous_row == first_row, first_row, -1)  # the first run started in the tile before
    g = scaled_rows(grad_ptr, scale_ptr, key & 0xFFFFFFFF, s, s_mask, d, d_mask, stride_gb, stride_gd, SCALED)
    run_sums, _ = tl.associative_scan((g, tl.broadcast_to(row[:, None], [SLOTS, BLOCK_D])), 0, _sum_within_run)
    run_ends = s_mask & (row != next_row)
    tl.store(out_ptr + row[:, None] * dim + d[None, :], run_sums.to(out_ptr.dtype.element_ty),
             mask=(run_ends & (row != inherited_row))[:, None] & d_mask[None, :])
    last = first + SLOTS - 1
    if last + 1 < num_slots:
        last_row = tl.load(keys_ptr + last) >> 32
        goes_on = (tl.load(keys_ptr + last + 1) >> 32) == last_row
        if goes_on & (last_row != inherited_row):
            acc = tl.sum(tl.where((s == last)[:, None], run_sums, 0.0), axis=0)
            k = (last + 1).to(tl.int64)
            while goes_on:
                n = k + tl.arange(0, BLOCK_N)
                run_key = tl.load(keys_ptr + n, mask=n < num_slots, other=-1)
                same = (run_key >> 32) == last_row
                acc += tl.sum(scaled_rows(grad_ptr, scale_ptr, run_key & 0xFFFFFFFF, n, same, d, d_mask, stride_gb,
                                          stride_gd, SCALED), axis=0)
                k += BLOCK_N
                goes_on = tl.sum(same.to(tl.int32), axis=0) == BLOCK_N  # equal rows are adjacent
            tl.store(out_ptr + last_row * dim + d, acc.to(out_ptr.dtype.element_ty), mask=d_mask)
    zero_gaps(out_ptr, tl.where(run_ends, row + 1, 0), tl.where(run_ends, next_row, 0), gap_count_ptr,
              gap_bounds_ptr, dim, d, d_mask, GAP_ROWS, GAP_LIMIT)
    if tl.program_id(0) == 0:
        leading = tl.arange(0, SLOTS) == 0
        zero_gaps(out_ptr, tl.zeros_like(row), tl.where(leading, first_row, 0), gap_count_ptr, gap_bounds_ptr, dim,
                  d, d_mask, GAP_ROWS, GAP_LIMIT)


@triton.jit
def zero_listed_gaps_kernel(out_ptr, gap_count_ptr, gap_bounds_ptr, dim, ROWS: tl.constexpr, BLOCK_D: tl.constexpr):
    """Zero every listed gap's rows [first, end): program p takes its blocks p, p + programs, ... of ROWS rows."""
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    d_mask = d < dim
    step = tl.num_programs(0) * ROWS
    zeros = tl.zeros([ROWS, BLOCK_D], dtype=out_ptr.dtype.element_ty)
    for entry in range(tl.load(gap_count_ptr)):
        first = tl.load(gap_bounds_ptr + 2 * entry)
        end = tl.load(gap_bounds_ptr + 2 * entry + 1)
        for block in range(first + tl.program_id(0) * ROWS, end, step):
            rows = block + tl.arange(0, ROWS)
            tl.store(out_ptr + rows[:, None] * dim + d[None, :], zeros, mask=(rows < end)[:, None] & d_mask[None, :])


def fill_runs(grad: torch.Tensor, stride_gb: int, stride_gd: int, slots: SortedSlots, total_rows: int,
              genome: dict) -> torch.Tensor:
    """The [total_rows, dim] gradient in grad's dtype: row r the sum over r's slots of the gradient row its key names
    (times the slot's scale in mean mode), zeros for rows without slots. grad: the tensor of those rows (its last dim
    is dim), read from its first element with strides stride_gb (rows) and stride_gd; slots: a stacked sort (its bag
    layout numbers grad's rows); genome: the runs genome (BLOCK_N, BLOCK_D, ITEMS_PER_PROGRAM, num_warps,
    num_stages)."""
    total_slots, dim = slots.keys.shape[0], grad.shape[-1]
    if total_slots == 0:
        return grad.new_zeros(total_rows, dim)
    out = torch.empty(total_rows, dim, dtype=grad.dtype, device=grad.device)
    gap_count = torch.zeros(1, dtype=torch.int32, device=grad.device)
    gap_bounds = torch.empty(2 * (total_rows // (GAP_LIMIT + 1) + 1), dtype=torch.int64, device=grad.device)
    block_d = genome["BLOCK_D"]
    launch(fill_runs_kernel, (triton.cdiv(total_slots, genome["ITEMS_PER_PROGRAM"]), triton.cdiv(dim, block_d)),
           grad, slots.keys, slots.scale, out, gap_count, gap_bounds, total_slots, total_rows, dim, stride_gb,
           stride_gd, SCALED=slots.mode == 1, BLOCK_N=genome["BLOCK_N"], BLOCK_D=block_d,
           SLOTS=genome["ITEMS_PER_PROGRAM"], GAP_ROWS=GAP_ROWS, GAP_LIMIT=GAP_LIMIT,
           num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    launch(zero_listed_gaps_kernel, (LIST_PROGRAMS, triton.cdiv(dim, block_d)), out, gap_count, gap_bounds, dim,
           ROWS=LIST_ROWS, BLOCK_D=block_d, num_warps=4, num_stages=1)
    return out


def embedding_bags_backward_fill_runs(grads: Sequence[torch.Tensor], indices: Sequence[torch.Tensor],
                                      offsets: Sequence[torch.Tensor], num_weights: Sequence[int], mode: int,
                                      genome: dict) -> list[torch.Tensor]:
    """grad of weight t = ATen's `_embedding_bag_backward` of table t, as backward_runs.embedding_bags_backward_runs
    takes and returns them (the grads stacked into one block first, as there)."""
    slots = sort_slots(grads, indices, offsets, num_weights, mode, consecutive_bags(grads))
    grad = torch.cat(list(grads))
    out = fill_runs(grad, grad.stride(0), grad.stride(1), slots, sum(num_weights), genome)
    return list(out.split(list(num_weights)))
