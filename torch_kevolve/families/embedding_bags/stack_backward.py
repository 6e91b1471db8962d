"""Triton dense weight gradients of kevolve::embedding_bags_stack_backward by the runs (backward_runs) and
fill-runs (backward_fill_runs) algorithms, reading the stack's gradient [samples, heads + tables, dim] in place.

backward_runs stacks the tables' gradients into one contiguous [sum of bags, dim] block first (its run pass takes
one pointer and one row stride): in the DLRM those are slices of the interaction's gradient, and the copy cost
81 us of the H100's training step (benchmarks/results/README.md, twenty-first session). Here the slots are sorted
as there (backward_sweep.sort_slots), but the place numbers each slot's bag by its row of the stack's gradient,
b * (heads + tables) + heads + t (a BagLayout), and the run pass reads that gradient as [samples * (heads + tables),
dim] rows. The zero fill and run pass launches are backward_runs' own (that module is part of shipped records'
sources, so it is not refactored to share them). The fill-runs form (backward_fill_runs) reads the stack's rows the
same way.
"""
from __future__ import annotations

from typing import Sequence

import torch
import triton

from ..embedding_bag.backward_triton import ZERO_ROWS, reduce_runs_kernel, zero_untouched_rows_kernel
from ..triton_launch import launch
from .backward_fill_runs import fill_runs
from .backward_sweep import MAX_SLOTS, BagLayout, SortedSlots, run_arrays, sort_slots


def _stack_slots(grad: torch.Tensor, heads: int, indices: Sequence[torch.Tensor], offsets: Sequence[torch.Tensor],
                 num_weights: Sequence[int], mode: int) -> tuple[torch.Tensor, SortedSlots]:
    """The stack's gradient (copied contiguous where its sample stride is not a whole number of its row stride, so
    that its rows are read as [samples * (heads + tables), dim] rows of strides grad.stride(1), grad.stride(2)) and
    the sorted stacked slots, each slot's bag numbered by its row of that gradient."""
    samples, rows_per_sample, dim = grad.shape
    tables = len(indices)
    if rows_per_sample != heads + tables:
        raise ValueError(f"a gradient of {rows_per_sample} rows per sample for {heads} heads and {tables} tables")
    if samples * rows_per_sample > MAX_SLOTS:
        raise ValueError(f"{samples} x {rows_per_sample} gradient rows: the run pass indexes them with int32")
    grads = [grad.select(1, heads + t) for t in range(tables)]
    slots = sort_slots(grads, indices, offsets, num_weights, mode,
                       BagLayout([heads + t for t in range(tables)], rows_per_sample))
    if grad.stride(0) != rows_per_sample * grad.stride(1):
        grad = grad.contiguous()
    return grad, slots


def embedding_bags_stack_backward_runs(grad: torch.Tensor, heads: int, indices: Sequence[torch.Tensor],
                                       offsets: Sequence[torch.Tensor], num_weights: Sequence[int], mode: int,
                                       genome: dict) -> list[torch.Tensor]:
    """grad of weight t = ATen's `_embedding_bag_backward` of table t at grad[:, heads + t], as views of one
    [sum of num_weights, dim] tensor in grad's dtype. grad: [samples, heads + tables, dim] (any strides); indices,
    offsets, num_weights, mode and genome as backward_runs.embedding_bags_backward_runs takes them."""
    grad, slots = _stack_slots(grad, heads, indices, offsets, num_weights, mode)
    rows, bags, scale = run_arrays(slots)
    total_rows, total_slots, dim = sum(num_weights), rows.shape[0], grad.shape[2]
    out = torch.empty(total_rows, dim, dtype=grad.dtype, device=grad.device)
    block_d = genome["BLOCK_D"]
    launch(zero_untouched_rows_kernel, (triton.cdiv(total_rows, ZERO_ROWS), triton.cdiv(dim, block_d)), slots.counts,
           out, total_rows, dim, -1, ROWS=ZERO_ROWS, BLOCK_D=block_d, num_warps=4, num_stages=1)
    launch(reduce_runs_kernel, (triton.cdiv(total_slots, genome["ITEMS_PER_PROGRAM"]), triton.cdiv(dim, block_d)),
           grad, rows, bags, scale, out, total_slots, dim, -1, grad.stride(1), grad.stride(2),
           BLOCK_N=genome["BLOCK_N"], BLOCK_D=block_d, SLOTS=genome["ITEMS_PER_PROGRAM"],
           num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    return list(out.split(list(num_weights)))


def embedding_bags_stack_backward_fill_runs(grad: torch.Tensor, heads: int, indices: Sequence[torch.Tensor],
                                            offsets: Sequence[torch.Tensor], num_weights: Sequence[int], mode: int,
                                            genome: dict) -> list[torch.Tensor]:
    """embedding_bags_stack_backward_runs's result by the fill-runs algorithm (one pass writes every row)."""
    grad, slots = _stack_slots(grad, heads, indices, offsets, num_weights, mode)
    out = fill_runs(grad, grad.stride(1), grad.stride(2), slots, sum(num_weights), genome)
    return list(out.split(list(num_weights)))
