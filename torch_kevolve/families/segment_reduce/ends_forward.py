"""Triton segment reduction (sum, mean, max, min along axis 0) that finds segments from their ends: one scan where
triton_kernel's forward makes offsets with a scan, a zero and a concatenation.

The kernel reads the lengths' inclusive running sum (segment s ends there, and starts where s - 1 ends), or the lengths
and their block sums (lengths_ends, by the genome's LENGTHS_TO_ENDS); offsets given are read as they are. Program
(s, j) reduces segment s over columns [j * BLOCK_D, (j + 1) * BLOCK_D), BLOCK_N rows at a time in fp32; max and
min propagate NaN through the comparison itself, where triton_kernel tracks NaN in a second tile. Results follow
ATen: an empty segment gives the initial value, else the identity (mean: NaN).
On the H100, 4096 bf16 segments of 0-200 rows of 128 values in a compiled graph (benchmarks/results/README.md,
thirtieth session): max 41.3 us of kernel plus 4.9 us of scan, 46.2 in all (78% of copy), where triton_kernel's best
genome took 50.9 in all (70%); the thirty-sixth, with lengths_ends' "block_scan": 39.7-39.9 plus 2.6-2.7, 43.5-43.8
(81%).
The row loop is pipelined num_stages deep through tl.range (the launch's num_stages alone leaves it unpipelined).
Measured and dropped there: programs of several consecutive segments that sum the lengths before them themselves
(8 segments a program took 82 us where one took 49: fewer programs keep fewer loads in flight).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import SegmentCall
from .lengths_ends import segment_ends, sums_block
from .triton_kernel import _identity, allocate


@triton.jit
def _ends_program(index_ptr, sums_ptr, inner, BY_LENGTHS: tl.constexpr, SUMS_BLOCK: tl.constexpr,
                  BLOCK_D: tl.constexpr):
    """(segment s, the program's columns d, which of them lie inside inner, s's first row, s's end row), reading
    lengths_ends.segment_ends' tensors: with lengths and SUMS_BLOCK 0 their running sum, with SUMS_BLOCK > 0 the
    lengths and the sum of each SUMS_BLOCK of them (s starts after the sums of the blocks before its own and the
    lengths before it in its block)."""
    s = tl.program_id(0)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    if BY_LENGTHS and SUMS_BLOCK > 0:
        k = tl.arange(0, SUMS_BLOCK)
        block = s // SUMS_BLOCK
        first = block * SUMS_BLOCK
        start = tl.sum(tl.load(index_ptr + first + k, mask=first + k < s, other=0).to(tl.int64), 0)
        for chunk in range(0, block, SUMS_BLOCK):
            start += tl.sum(tl.load(sums_ptr + chunk + k, mask=chunk + k < block, other=0).to(tl.int64), 0)
        end = start + tl.load(index_ptr + s).to(tl.int64)
    elif BY_LENGTHS:
        start = tl.load(index_ptr + s - 1, mask=s > 0, other=0).to(tl.int64)
        end = tl.load(index_ptr + s).to(tl.int64)
    else:
        start = tl.load(index_ptr + s).to(tl.int64)
        end = tl.load(index_ptr + s + 1).to(tl.int64)
    return s, d, d < inner, start, end


@triton.jit
def _max_with_nan(a, b):
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _min_with_nan(a, b):
    return tl.minimum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _combine(a, b, REDUCE: tl.constexpr):
    """a and b combined as REDUCE combines two values (max and min keep NaN; sum and mean add)."""
    if REDUCE == "max":
        return _max_with_nan(a, b)
    elif REDUCE == "min":
        return _min_with_nan(a, b)
    else:
        return a + b


@triton.jit
def ends_reduce_kernel(
    data_ptr,  # [rows, inner] contiguous
    index_ptr,  # lengths_ends.segment_ends: the lengths' running sum or the lengths (BY_LENGTHS), or offsets
    sums_ptr,  # lengths_ends.segment_ends: the lengths' block sums (BY_LENGTHS, SUMS_BLOCK > 0)
    out_ptr,  # [segments, inner] contiguous
    inner,
    initial,  # the start value when HAS_INITIAL
    REDUCE: tl.constexpr,  # "sum" | "mean" | "max" | "min"
    HAS_INITIAL: tl.constexpr,
    BY_LENGTHS: tl.constexpr,
    SUMS_BLOCK: tl.constexpr,  # 0: index_ptr holds the lengths' running sum; else lengths summed per block first
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    LOOP_STAGES: tl.constexpr,  # the row loop's pipeline depth (Triton pipelines it only when tl.range asks)
):
    s, d, in_d, start, end = _ends_program(index_ptr, sums_ptr, inner, BY_LENGTHS, SUMS_BLOCK, BLOCK_D)
    identity = _identity(REDUCE)
    acc = tl.full([BLOCK_N, BLOCK_D], identity, tl.float32)
    for row in tl.range(start, end, BLOCK_N, num_stages=LOOP_STAGES):
        r = row + tl.arange(0, BLOCK_N)
        mask = (r < end)[:, None] & in_d[None, :]
        x = tl.load(data_ptr + r[:, None] * inner + d[None, :], mask=mask, other=identity).to(tl.float32)
        acc = _combine(acc, x, REDUCE)
    if REDUCE == "max":
        result = tl.reduce(acc, 0, _max_with_nan)
    elif REDUCE == "min":
        result = tl.reduce(acc, 0, _min_with_nan)
    else:
        result = tl.sum(acc, 0)
    if HAS_INITIAL:
        result = _combine(result, initial, REDUCE)
    if REDUCE == "mean":
        empty = result if HAS_INITIAL else float("nan")  # ATen: the initial value, else NaN
        result = tl.where(end > start, result / tl.maximum(end - start, 1).to(tl.float32), empty)
    tl.store(out_ptr + s.to(tl.int64) * inner + d, result.to(out_ptr.dtype.element_ty), mask=in_d)


def reduce(t: dict, call: SegmentCall, genome: dict) -> list[torch.Tensor]:
    """The forward call's output, computed by the kernel (after the lengths' scan or block sums where segments come
    as lengths, as genome["LENGTHS_TO_ENDS"] says)."""
    (out,) = allocate(t, call)
    if call.segments == 0:
        return [out]
    grid = (call.segments, triton.cdiv(call.inner, genome["BLOCK_D"]))
    way = genome["LENGTHS_TO_ENDS"]
    launch(ends_reduce_kernel, grid, t["data"].contiguous(), *segment_ends(t["index"], call, way), out, call.inner,
           0.0 if call.initial is None else call.initial, REDUCE=call.reduce, HAS_INITIAL=call.initial is not None,
           BY_LENGTHS=call.by_lengths, SUMS_BLOCK=sums_block(way), BLOCK_N=genome["BLOCK_N"], BLOCK_D=genome["BLOCK_D"],
           LOOP_STAGES=genome["num_stages"], num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    return [out]
