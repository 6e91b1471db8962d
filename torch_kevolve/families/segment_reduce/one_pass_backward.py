"""Triton gradient of a max or min segment reduction that reads each held row of data once.

ATen gives a row of segment s the output's gradient where the row equals the output (or is NaN), divided by the
number of such rows when there are several and the gradient is positive. triton_kernel's backward therefore
reads a segment's rows twice: once to count those rows, once to write the gradient, 1.5x the bytes of one pass
(66% of copy on the H100 for 4096 segments of up to 200 rows of 128 floats, at the copy rate for the bytes it
reads). Here program (s, j) handles segment s over columns [j * BLOCK_D, (j + 1) * BLOCK_D), found from its ends as in
ends_forward (lengths cost a scan or a block reduction, lengths_ends; no zero-fill or concatenation):
- rows past the first RESIDENT_ROWS (segments longer than that) come first, BLOCK_N at a time, while nothing
  else is live. With TAIL_PASSES 2 they are counted, and written after the held rows; with 1 they are counted
  and written at once, as if each were the only row taking the gradient; where a column's gradient turns out
  shared (divided), TAIL_FIX says how its tail hits get their share:
  - "reread_rows" (the default): the tail is read again and whole rows of it stored (vector stores; the other
    columns get what they already hold);
  - "reread": the same, storing only the hits in those columns (a mask that varies by column inside a thread's
    16-byte vector, so each element is its own 2-byte store: 141 SASS instructions a step against 102).
  On the H100 (bf16, the jagged benchmark's layout, in Inductor's graph) the kernel takes 88.0-88.5 us with
  "reread_rows" and 90.4-90.8 with "reread"; fp32 148.7 against 148.5-149.0. The tail's hits are summed over rows
  once, after the loop: a sum per step crosses warps (the rows of a tile lie in several).
- the first RESIDENT_ROWS rows: one tile held in registers, counted, then written with the gradient divided by
  the segment's whole count; its element offsets are int32 from the segment's first row (the registers ptxas
  gives the kernel drop from 188 to 120-138 at 32 values per thread).
Rows before the first segment and after the last get 0, as in triton_kernel.
The tail loop is pipelined num_stages deep through tl.range (a loop without a dot stays unpipelined whatever the
launch's num_stages). On the H100 (Triton 3.6, bf16, the jagged benchmark's layout) 3 stages took the kernel in
Inductor's graph from 76 registers to 64 and the gradient from 101.3 to 95.2 us; ncu finds it about as busy issuing
integer instructions (ALU 65%) as moving bytes (DRAM 62%), and the rewrite loop costs about 9 us (without it: 86.3 us,
wrong where a tail ties).
Measured and dropped (benchmarks/results/README.md, thirty-first, thirty-third and thirty-fourth sessions):
zero-filling the gradient first and writing only the elements that take it (bf16 131.6 us against 101.6); leaving
the shared tail columns to a second kernel (the tail written at once, each program's owed columns and divided
gradients stored for the mending kernel): this kernel fell to 82.4 us, but the mending took 12.2-20.0 us in the graph
(8.9 us alone at best, 6 us for launching one small program per program), 100-107 us in all against 95.7-96.4;
noting each tail hit so that a column's one or two are stored to without re-reading (thirty-sixth: each element
kept a bit per tail step, which cost the loop 2 SASS instructions a step but the kernel 80 registers against 64;
133.3 us against 88.0).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import SegmentCall
from .ends_forward import _ends_program
from .lengths_ends import segment_ends, sums_block
from .triton_kernel import _tile, _zero_rows, allocate

TAIL_FIXES = ("reread_rows", "reread")  # the TAIL_FIX gene (TAIL_PASSES 1)


@triton.jit
def _takes_gradient(x, target, mask):
    """Which elements of the tile x get the output's gradient: those equal to their segment's output `target`
    (broadcast to x; the arg max or min), or NaN."""
    return ((x == target) | (x != x)) & mask


@triton.jit
def one_pass_backward_kernel(
    grad_ptr,  # [segments, inner] gradient of the output
    output_ptr,  # [segments, inner] the forward's output
    data_ptr,  # [rows, inner] the forward's input, contiguous
    index_ptr,  # lengths_ends.segment_ends: the lengths' running sum or the lengths (BY_LENGTHS), or offsets
    sums_ptr,  # lengths_ends.segment_ends: the lengths' block sums (BY_LENGTHS, SUMS_BLOCK > 0)
    grad_in_ptr,  # [rows, inner] contiguous, every row written
    segments,
    rows,
    inner,
    BY_LENGTHS: tl.constexpr,
    SUMS_BLOCK: tl.constexpr,  # 0: index_ptr holds the lengths' running sum; else lengths summed per block first
    RESIDENT_ROWS: tl.constexpr,
    TAIL_PASSES: tl.constexpr,  # 2: count the tail, then write it; 1: write it while counting, fix it if shared
    TAIL_FIX: tl.constexpr,  # TAIL_FIXES (TAIL_PASSES 1): how shared tail hits get their share
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    LOOP_STAGES: tl.constexpr,  # the tail loop's pipeline depth (Triton pipelines it only when tl.range asks)
):
    s, d, in_d, start, end = _ends_program(index_ptr, sums_ptr, inner, BY_LENGTHS, SUMS_BLOCK, BLOCK_D)
    g = tl.load(grad_ptr + s.to(tl.int64) * inner + d, mask=in_d, other=0).to(tl.float32)
    target = tl.load(output_ptr + s.to(tl.int64) * inner + d, mask=in_d, other=0).to(tl.float32)[None, :]
    held_end = tl.minimum(end, start + RESIDENT_ROWS)
    tail_hits = tl.zeros([BLOCK_N, BLOCK_D], tl.int32)
    for row in tl.range(held_end, end, BLOCK_N, num_stages=LOOP_STAGES):
        offs, mask = _tile(row, end, d, in_d, inner, BLOCK_N)
        hit = _takes_gradient(tl.load(data_ptr + offs, mask=mask, other=0).to(tl.float32), target, mask)
        tail_hits += hit.to(tl.int32)
        if TAIL_PASSES == 1:
            tl.store(grad_in_ptr + offs, tl.where(hit, g[None, :], 0.0).to(grad_in_ptr.dtype.element_ty), mask=mask)
    tail_count = tl.sum(tail_hits, 0)
    held, held_mask = _tile(0, held_end - start, d, in_d, inner, RESIDENT_ROWS)  # int32 offsets from row start
    base = start * inner
    held_hit = _takes_gradient(tl.load(data_ptr + base + held, mask=held_mask, other=0).to(tl.float32), target,
                               held_mask)
    count = tail_count + tl.sum(held_hit.to(tl.int32), 0)
    shared = (count >= 2) & (g > 0)
    g = tl.where(shared, g / tl.maximum(count, 1).to(tl.float32), g)
    tl.store(grad_in_ptr + base + held, tl.where(held_hit, g[None, :], 0.0).to(grad_in_ptr.dtype.element_ty),
             mask=held_mask)
    if TAIL_PASSES == 2:
        rewrite = tail_count >= 0  # every column's tail
    else:
        rewrite = (tail_count > 0) & shared  # the columns whose tail took the undivided gradient
    if tl.max(rewrite.to(tl.int32), 0) > 0:
        for row in range(held_end, end, BLOCK_N):
            offs, mask = _tile(row, end, d, in_d, inner, BLOCK_N)
            x = tl.load(data_ptr + offs, mask=mask, other=0).to(tl.float32)
            hit = _takes_gradient(x, target, mask)
            value = tl.where(hit, g[None, :], 0.0).to(grad_in_ptr.dtype.element_ty)
            if TAIL_PASSES == 2 or TAIL_FIX == "reread_rows":
                tl.store(grad_in_ptr + offs, value, mask=mask)
            else:
                tl.store(grad_in_ptr + offs, value, mask=hit & rewrite[None, :])
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
           *segment_ends(t["index"], call, genome["LENGTHS_TO_ENDS"]), grad_in, call.segments, call.rows, call.inner,
           BY_LENGTHS=call.by_lengths, SUMS_BLOCK=sums_block(genome["LENGTHS_TO_ENDS"]),
           RESIDENT_ROWS=genome["RESIDENT_ROWS"], TAIL_PASSES=genome["TAIL_PASSES"],
           TAIL_FIX=genome["TAIL_FIX"], BLOCK_N=genome["BLOCK_N"],
           BLOCK_D=genome["BLOCK_D"], LOOP_STAGES=genome["num_stages"], num_warps=genome["num_warps"],
           num_stages=genome["num_stages"])
    return [grad_in]
