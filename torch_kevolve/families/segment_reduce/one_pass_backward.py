"""Triton gradient of a max or min segment reduction that reads each held row of data once.

ATen gives a row of segment s the output's gradient where the row equals the output (or is NaN), divided by the
number of such rows when there are several and the gradient is positive. triton_kernel's backward therefore
reads a segment's rows twice: once to count those rows, once to write the gradient, 1.5x the bytes of one pass
(66% of copy on the H100 for 4096 segments of up to 200 rows of 128 floats, at the copy rate for the bytes it
reads). Here program (s, j) loads the first RESIDENT_ROWS rows of segment s over columns [j * BLOCK_D,
(j + 1) * BLOCK_D) as one tile held in registers, counts on it, and writes the gradient from it. Only rows past
RESIDENT_ROWS (segments longer than that) are read twice, BLOCK_N at a time: they are counted before the held tile
is loaded, so that nothing else is live beside it, and its element offsets are int32 from the segment's first row
(the registers ptxas gives the kernel drop from 188 to 120-138 at 32 values per thread). Rows before the first
segment and after the last get 0, as in triton_kernel.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import SegmentCall, offsets_of
from .triton_kernel import _segment_program, _tile, _zero_rows, allocate


@triton.jit
def _takes_gradient(x, target, mask):
    """Which elements of the tile x get the output's gradient: those equal to it (the arg max or min), or NaN."""
    return ((x == target[None, :]) | (x != x)) & mask


@triton.jit
def one_pass_backward_kernel(
    grad_ptr,  # [segments, inner] gradient of the output
    output_ptr,  # [segments, inner] the forward's output
    data_ptr,  # [rows, inner] the forward's input, contiguous
    offsets_ptr,  # [segments + 1]
    grad_in_ptr,  # [rows, inner] contiguous, every row written
    segments,
    rows,
    inner,
    RESIDENT_ROWS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    s, d, in_d, start, end = _segment_program(offsets_ptr, inner, BLOCK_D)
    g = tl.load(grad_ptr + s.to(tl.int64) * inner + d, mask=in_d, other=0).to(tl.float32)
    target = tl.load(output_ptr + s.to(tl.int64) * inner + d, mask=in_d, other=0).to(tl.float32)
    held_end = tl.minimum(end, start + RESIDENT_ROWS)
    count = tl.zeros([BLOCK_D], tl.int32)
    for row in range(held_end, end, BLOCK_N):  # the tail first: nothing else is live while the held tile is
        offs, mask = _tile(row, end, d, in_d, inner, BLOCK_N)
        x = tl.load(data_ptr + offs, mask=mask, other=0).to(tl.float32)
        count += tl.sum(_takes_gradient(x, target, mask).to(tl.int32), 0)
    held, held_mask = _tile(0, held_end - start, d, in_d, inner, RESIDENT_ROWS)  # int32 offsets from row start
    base = start * inner
    held_hit = _takes_gradient(tl.load(data_ptr + base + held, mask=held_mask, other=0).to(tl.float32), target,
                               held_mask)
    count += tl.sum(held_hit.to(tl.int32), 0)
    g = tl.where((count >= 2) & (g > 0), g / tl.maximum(count, 1).to(tl.float32), g)
    tl.store(grad_in_ptr + base + held, tl.where(held_hit, g[None, :], 0.0).to(grad_in_ptr.dtype.element_ty),
             mask=held_mask)
    for row in range(held_end, end, BLOCK_N):
        offs, mask = _tile(row, end, d, in_d, inner, BLOCK_N)
        x = tl.load(data_ptr + offs, mask=mask, other=0).to(tl.float32)
        value = tl.where(_takes_gradient(x, target, mask), g[None, :], 0.0)
        tl.store(grad_in_ptr + offs, value.to(grad_in_ptr.dtype.element_ty), mask=mask)
    if s == 0:
        _zero_rows(grad_in_ptr, 0, start, d, in_d, inner, BLOCK_N, BLOCK_D)
    if s == segments - 1:
        _zero_rows(grad_in_ptr, end, rows, d, in_d, inner, BLOCK_N, BLOCK_D)


def backward(t: dict, call: SegmentCall, genome: dict) -> list[torch.Tensor]:
    """The data gradient of a max or min segment reduction (call.backward), computed by the kernel."""
    (grad_in,) = allocate(t, call)
    if call.segments == 0:
        return [grad_in.zero_()]  # no segment holds any row
    grid = (call.segments, triton.cdiv(call.inner, genome["BLOCK_D"]))
    launch(one_pass_backward_kernel, grid, t["grad"].contiguous(), t["output"].contiguous(), t["data"].contiguous(),
           offsets_of(t["index"], call), grad_in, call.segments, call.rows, call.inner,
           RESIDENT_ROWS=genome["RESIDENT_ROWS"], BLOCK_N=genome["BLOCK_N"], BLOCK_D=genome["BLOCK_D"],
           num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    return [grad_in]
