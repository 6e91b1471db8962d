"""Triton dense weight gradients of kevolve::embedding_bags_backward by the runs algorithm: the sweep's sort, the
segment algorithm's row passes.

    sort_slots          backward_sweep's count, prefix sums and place over bag tiles, every table's indices read
                        in place (the segment algorithm stacks them first and places one bag per program); the
                        place keeps each slot's stacked row and bag as one key (and a mean's 1/bag size), which
                        run_arrays splits for the run pass (sums get a fill of ones, not a scattered store per
                        slot)
    torch.cat           the grads, stacked into one contiguous [sum of bags, dim] block (the run pass takes one
                        pointer and one stride; strided views are read once, here)
    zero_untouched_rows backward_triton's zero fill of the rows no index names
    reduce_runs         backward_triton's segmented scan over SLOTS consecutive slots: each run of equal rows is
                        summed and its table row written once

So every gradient row is written once, in the grad dtype, without float atomics. On the H200's DLRM key (26 fp32
tables of 100k x 128, batch 4096, pooling 20) the parts were measured apart (benchmarks/results/README.md, eleventh
session): the sweep's sort 87 us against segment's 156 us and its 27 us of stacking copies (of which the grads' stay
here); zero fill and runs 136 + 325 us.
"""
from __future__ import annotations

from typing import Sequence

import torch
import triton

from ..embedding_bag.backward_triton import ZERO_ROWS, reduce_runs_kernel, zero_untouched_rows_kernel
from ..triton_launch import launch
from .backward_sweep import consecutive_bags, run_arrays, sort_slots


def embedding_bags_backward_runs(grads: Sequence[torch.Tensor], indices: Sequence[torch.Tensor],
                                 offsets: Sequence[torch.Tensor], num_weights: Sequence[int], mode: int,
                                 genome: dict) -> list[torch.Tensor]:
    """grad of weight t = ATen's `_embedding_bag_backward` of table t, as backward_sweep.embedding_bags_backward_sweep
    takes and returns them. genome: ITEMS_PER_PROGRAM (slots per program), BLOCK_N (slots per step of a run that
    goes on past its program), BLOCK_D, num_warps, num_stages (of the run pass)."""
    slots = sort_slots(grads, indices, offsets, num_weights, mode, consecutive_bags(grads))
    rows, bags, scale = run_arrays(slots)
    grad = torch.cat(list(grads))
    total_rows, total_slots, dim = sum(num_weights), rows.shape[0], grad.shape[1]
    out = torch.empty(total_rows, dim, dtype=grad.dtype, device=grad.device)
    block_d = genome["BLOCK_D"]
    launch(zero_untouched_rows_kernel, (triton.cdiv(total_rows, ZERO_ROWS), triton.cdiv(dim, block_d)), slots.counts,
           out, total_rows, dim, -1, ROWS=ZERO_ROWS, BLOCK_D=block_d, num_warps=4, num_stages=1)
    launch(reduce_runs_kernel, (triton.cdiv(total_slots, genome["ITEMS_PER_PROGRAM"]), triton.cdiv(dim, block_d)),
           grad, rows, bags, scale, out, total_slots, dim, -1, grad.stride(0), grad.stride(1),
           BLOCK_N=genome["BLOCK_N"], BLOCK_D=block_d, SLOTS=genome["ITEMS_PER_PROGRAM"],
           num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    return list(out.split(list(num_weights)))
