"""Triton gradient of a max or min segment reduction over tiles of rows, whatever the segments.

one_pass_backward gives each (segment, column block) one program, so few long segments leave the GPU idle: 16
segments of 0-50000 rows of 128 values took it 877 us in fp32 and 1566 us in bf16 on the H100. Here programs take
fixed tiles of BLOCK_R rows by BLOCK_D columns, 220 and 202 us there (benchmarks/results/logs/rows-final-h100.log);
on 4096 segments of 0-200 rows the one-pass kernel stays ahead (fp32 156.8 against 211.7 us, bf16 104.0 against
176.3). The kernels:
1. segment_ids_kernel: program s writes s as the segment of its rows [offsets[s], offsets[s + 1]);
2. rows_gradient_kernel: each element of data gets the output's gradient of its row's segment where it equals
   that segment's output (or is NaN), else 0, as if it were the segment's only such row; where that gradient is
   positive, the hit is also added to counts[segment, column] (a relaxed atomic per hit);
3. shared_gradient_kernel: the same tiles read the counts of their elements' segments and columns and, only in a
   tile where one is 2 or more, read data again to divide the hits' gradient by it (ATen's rule). A pass by
   segments instead walked each long segment in one program: 16 segments of 30k bf16 rows, whose maxima tie,
   took 902 us (here 202 us); where nothing ties it was 45 us faster than reading every element's count.
Rows before the first segment and after the last get 0: their ids are never written, and the offsets mask them.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import SegmentCall, offsets_of
from .one_pass_backward import _takes_gradient
from .triton_kernel import allocate

IDS_BLOCK = 256  # rows per step of a segment_ids_kernel program


@triton.jit
def segment_ids_kernel(offsets_ptr, ids_ptr, BLOCK: tl.constexpr):
    """ids[r] = s for the rows r of segment s (program s)."""
    s = tl.program_id(0)
    start = tl.load(offsets_ptr + s).to(tl.int64)
    end = tl.load(offsets_ptr + s + 1).to(tl.int64)
    for row in range(start, end, BLOCK):
        r = row + tl.arange(0, BLOCK)
        tl.store(ids_ptr + r, tl.zeros([BLOCK], tl.int32) + s, mask=r < end)


@triton.jit
def _row_tile(offsets_ptr, ids_ptr, inner, segments, BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr):
    """(the program's rows r, its columns d, which columns lie inside inner, which elements some segment holds, and
    each element's offset in a [segments, inner] tensor by its row's segment)."""
    r = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_d = d < inner
    held = (r >= tl.load(offsets_ptr).to(tl.int64)) & (r < tl.load(offsets_ptr + segments).to(tl.int64))
    at = tl.load(ids_ptr + r, mask=held, other=0).to(tl.int64)[:, None] * inner + d[None, :]
    return r, d, in_d, held[:, None] & in_d[None, :], at


@triton.jit
def rows_gradient_kernel(
    grad_ptr,  # [segments, inner] gradient of the output, contiguous
    output_ptr,  # [segments, inner] the forward's output, contiguous
    data_ptr,  # [rows, inner] the forward's input, contiguous
    offsets_ptr,  # [segments + 1]
    ids_ptr,  # [rows] int32: each held row's segment
    grad_in_ptr,  # [rows, inner] contiguous, every row written
    counts_ptr,  # [segments, inner] int32 zeros: hits taking a positive gradient, added here
    rows,
    inner,
    segments,
    BLOCK_R: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    r, d, in_d, held_mask, at = _row_tile(offsets_ptr, ids_ptr, inner, segments, BLOCK_R, BLOCK_D)
    x = tl.load(data_ptr + r[:, None] * inner + d[None, :], mask=held_mask, other=0).to(tl.float32)
    target = tl.load(output_ptr + at, mask=held_mask, other=0).to(tl.float32)
    g = tl.load(grad_ptr + at, mask=held_mask, other=0).to(tl.float32)
    hit = _takes_gradient(x, target, held_mask)
    tl.store(grad_in_ptr + r[:, None] * inner + d[None, :], tl.where(hit, g, 0.0).to(grad_in_ptr.dtype.element_ty),
             mask=(r < rows)[:, None] & in_d[None, :])
    tl.atomic_add(counts_ptr + at, hit.to(tl.int32), mask=hit & (g > 0), sem="relaxed")


@triton.jit
def shared_gradient_kernel(
    grad_ptr,  # [segments, inner] contiguous
    output_ptr,  # [segments, inner] contiguous
    data_ptr,  # [rows, inner] contiguous
    offsets_ptr,  # [segments + 1]
    ids_ptr,  # [rows] int32
    counts_ptr,  # [segments, inner] int32: rows_gradient_kernel's counts
    grad_in_ptr,  # [rows, inner]: rows_gradient_kernel's undivided gradient
    inner,
    segments,
    BLOCK_R: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    r, d, _, held_mask, at = _row_tile(offsets_ptr, ids_ptr, inner, segments, BLOCK_R, BLOCK_D)
    count = tl.load(counts_ptr + at, mask=held_mask, other=0)
    shared = held_mask & (count >= 2)
    if tl.max(tl.max(shared.to(tl.int32), 1), 0) > 0:
        x = tl.load(data_ptr + r[:, None] * inner + d[None, :], mask=shared, other=0).to(tl.float32)
        target = tl.load(output_ptr + at, mask=shared, other=0).to(tl.float32)
        g = tl.load(grad_ptr + at, mask=shared, other=0).to(tl.float32) / tl.maximum(count, 1).to(tl.float32)
        hit = _takes_gradient(x, target, shared)
        tl.store(grad_in_ptr + r[:, None] * inner + d[None, :], g.to(grad_in_ptr.dtype.element_ty), mask=hit)


def backward(t: dict, call: SegmentCall, genome: dict) -> list[torch.Tensor]:
    """The data gradient of a max or min segment reduction (call.backward), computed by the three kernels."""
    (grad_in,) = allocate(t, call)
    if call.segments == 0:
        return [grad_in.zero_()]  # no segment holds any row
    device = grad_in.device
    offsets = offsets_of(t["index"], call)
    grad, output, data = t["grad"].contiguous(), t["output"].contiguous(), t["data"].contiguous()
    ids = torch.empty(call.rows, dtype=torch.int32, device=device)
    counts = torch.zeros(call.segments, call.inner, dtype=torch.int32, device=device)
    launch(segment_ids_kernel, (call.segments,), offsets, ids, BLOCK=IDS_BLOCK, num_warps=2, num_stages=1)
    tiles = (triton.cdiv(call.rows, genome["BLOCK_R"]), triton.cdiv(call.inner, genome["BLOCK_D"]))
    launch(rows_gradient_kernel, tiles, grad, output, data, offsets, ids, grad_in, counts, call.rows, call.inner,
           call.segments, BLOCK_R=genome["BLOCK_R"], BLOCK_D=genome["BLOCK_D"], num_warps=genome["num_warps"],
           num_stages=genome["num_stages"])
    launch(shared_gradient_kernel, tiles, grad, output, data, offsets, ids, counts, grad_in, call.inner,
           call.segments, BLOCK_R=genome["BLOCK_R"], BLOCK_D=genome["BLOCK_D"], num_warps=genome["num_warps"],
           num_stages=genome["num_stages"])
    return [grad_in]
