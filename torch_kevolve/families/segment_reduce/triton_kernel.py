"""Triton segment reductions (sum, mean, max, min along axis 0) and their gradients, as ATen computes them.

forward:  program (s, j) reduces segment s over columns [j * BLOCK_D, (j + 1) * BLOCK_D), BLOCK_N rows
          at a time, in fp32, starting from `initial` (or the identity). Max and min propagate NaN;
          mean divides by the length; an empty segment gives `initial`, else the identity (mean: NaN).
backward: the same programs write the segment's rows of the data gradient: grad (sum), grad / length
          (mean), or for max and min grad where the row equals the output or is NaN, divided by the
          number of such rows when there are several and grad > 0 (ATen's rule). Rows before the
          first segment or after the last get 0.
Lengths are turned into offsets (a running sum) before the launch.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import SegmentCall, offsets_of

GENOME_CONSTEXPRS = ("BLOCK_N", "BLOCK_D")


@triton.jit
def _identity(REDUCE: tl.constexpr):
    if REDUCE == "max":
        return -float("inf")
    elif REDUCE == "min":
        return float("inf")
    else:
        return 0.0


@triton.jit
def _segment_program(offsets_ptr, inner, BLOCK_D: tl.constexpr):
    """(segment s, the program's columns d, which of them lie inside inner, s's first row, s's end row)."""
    s = tl.program_id(0)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    start = tl.load(offsets_ptr + s).to(tl.int64)
    end = tl.load(offsets_ptr + s + 1).to(tl.int64)
    return s, d, d < inner, start, end


@triton.jit
def _tile(row, end, d, in_d, inner, BLOCK_N: tl.constexpr):
    """(element offsets, mask) of the tile of rows [row, row + BLOCK_N) before `end` and columns d."""
    r = row + tl.arange(0, BLOCK_N)
    return r[:, None] * inner + d[None, :], (r < end)[:, None] & in_d[None, :]


@triton.jit
def segment_reduce_kernel(
    data_ptr,  # [rows, inner] contiguous
    offsets_ptr,  # [segments + 1]: segment s holds rows [offsets[s], offsets[s + 1])
    out_ptr,  # [segments, inner] contiguous
    inner,
    initial,  # the start value when HAS_INITIAL
    REDUCE: tl.constexpr,  # "sum" | "mean" | "max" | "min"
    HAS_INITIAL: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    s, d, in_d, start, end = _segment_program(offsets_ptr, inner, BLOCK_D)
    identity = _identity(REDUCE)
    acc = tl.full([BLOCK_N, BLOCK_D], identity, tl.float32)
    nan_seen = tl.zeros([BLOCK_N, BLOCK_D], tl.int32)
    for row in range(start, end, BLOCK_N):
        offs, mask = _tile(row, end, d, in_d, inner, BLOCK_N)
        x = tl.where(mask, tl.load(data_ptr + offs, mask=mask, other=0).to(tl.float32), identity)
        if REDUCE == "max":
            acc = tl.maximum(acc, x)
            nan_seen = nan_seen | (x != x).to(tl.int32)
        elif REDUCE == "min":
            acc = tl.minimum(acc, x)
            nan_seen = nan_seen | (x != x).to(tl.int32)
        else:
            acc = acc + x
    if REDUCE == "max":
        result = tl.max(acc, 0)
    elif REDUCE == "min":
        result = tl.min(acc, 0)
    else:
        result = tl.sum(acc, 0)
    nan = tl.max(nan_seen, 0) > 0
    if HAS_INITIAL:
        if REDUCE == "max":
            result = tl.maximum(result, initial)
        elif REDUCE == "min":
            result = tl.minimum(result, initial)
        else:
            result = result + initial
        nan = nan | (initial != initial)
    if REDUCE == "max" or REDUCE == "min":
        result = tl.where(nan, float("nan"), result)
    if REDUCE == "mean":
        length = end - start
        empty = result if HAS_INITIAL else float("nan")  # ATen: the initial value, else NaN
        result = tl.where(length > 0, result / tl.maximum(length, 1).to(tl.float32), empty)
    tl.store(out_ptr + s.to(tl.int64) * inner + d, result.to(out_ptr.dtype.element_ty), mask=in_d)


@triton.jit
def _zero_rows(ptr, lo, hi, d, in_d, inner, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """ptr[lo:hi, d] = 0 for the columns d (in_d: those inside the inner dim)."""
    for row in range(lo, hi, BLOCK_N):
        offs, mask = _tile(row, hi, d, in_d, inner, BLOCK_N)
        tl.store(ptr + offs, tl.zeros([BLOCK_N, BLOCK_D], ptr.dtype.element_ty), mask=mask)


@triton.jit
def segment_reduce_backward_kernel(
    grad_ptr,  # [segments, inner] gradient of the output
    output_ptr,  # [segments, inner] the forward's output (read for max and min)
    data_ptr,  # [rows, inner] the forward's input (read for max and min)
    offsets_ptr,  # [segments + 1]
    grad_in_ptr,  # [rows, inner] contiguous, every row written
    segments,
    rows,
    inner,
    REDUCE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    s, d, in_d, start, end = _segment_program(offsets_ptr, inner, BLOCK_D)
    g = tl.load(grad_ptr + s.to(tl.int64) * inner + d, mask=in_d, other=0).to(tl.float32)
    if REDUCE == "mean":
        g = g / tl.maximum(end - start, 1).to(tl.float32)
    if REDUCE == "max" or REDUCE == "min":
        target = tl.load(output_ptr + s.to(tl.int64) * inner + d, mask=in_d, other=0).to(tl.float32)
        count = tl.zeros([BLOCK_D], tl.int32)
        for row in range(start, end, BLOCK_N):
            offs, mask = _tile(row, end, d, in_d, inner, BLOCK_N)
            x = tl.load(data_ptr + offs, mask=mask, other=0).to(tl.float32)
            hit = ((x == target[None, :]) | (x != x)) & mask
            count += tl.sum(hit.to(tl.int32), 0)
        g = tl.where((count >= 2) & (g > 0), g / tl.maximum(count, 1).to(tl.float32), g)
    for row in range(start, end, BLOCK_N):
        offs, mask = _tile(row, end, d, in_d, inner, BLOCK_N)
        value = tl.zeros([BLOCK_N, BLOCK_D], tl.float32) + g[None, :]
        if REDUCE == "max" or REDUCE == "min":
            x = tl.load(data_ptr + offs, mask=mask, other=0).to(tl.float32)
            value = tl.where((x == target[None, :]) | (x != x), value, 0.0)
        tl.store(grad_in_ptr + offs, value.to(grad_in_ptr.dtype.element_ty), mask=mask)
    if s == 0:
        _zero_rows(grad_in_ptr, 0, start, d, in_d, inner, BLOCK_N, BLOCK_D)
    if s == segments - 1:
        _zero_rows(grad_in_ptr, end, rows, d, in_d, inner, BLOCK_N, BLOCK_D)


def allocate(t: dict, call: SegmentCall) -> list[torch.Tensor]:
    data = t["data"]
    return [torch.empty(call.out_shape, dtype=data.dtype, device=data.device)]


def reduce(t: dict, call: SegmentCall, genome: dict) -> list[torch.Tensor]:
    """The call's output, computed by the kernels."""
    (out,) = allocate(t, call)
    if call.backward and call.segments == 0:
        return [out.zero_()]  # no segment holds any row
    offsets = offsets_of(t["index"], call)
    grid = (call.segments, triton.cdiv(call.inner, genome["BLOCK_D"]))
    options = dict(REDUCE=call.reduce, num_warps=genome["num_warps"], num_stages=genome["num_stages"],
                   **{name: genome[name] for name in GENOME_CONSTEXPRS})
    data = t["data"].contiguous()
    if call.backward:
        launch(segment_reduce_backward_kernel, grid, t["grad"].contiguous(), t["output"].contiguous(), data, offsets,
               out, call.segments, call.rows, call.inner, **options)
    else:
        initial = 0.0 if call.initial is None else call.initial
        launch(segment_reduce_kernel, grid, data, offsets, out, call.inner, initial,
               HAS_INITIAL=call.initial is not None, **options)
    return [out]
