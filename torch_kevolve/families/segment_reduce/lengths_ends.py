"""How the segment kernels that read segment ends (ends_forward, one_pass_backward) get them from lengths: the
LENGTHS_TO_ENDS gene.

- "block_scan" (the default): the lengths' inclusive running sum by lengths_ends_kernel, SCAN_BLOCK lengths a
  program, whose loads depend on no other load (where a one-program scan walks the lengths chunk after chunk).
- "cumsum": the same running sum by torch.cumsum (in a compiled graph, Inductor's one-program scan); the way left
  where the others are refused: segments given as offsets (read as they are) or too many for MOST_STEPS (steps).
- "block_sums": no running sum; the sum of each SUMS_BLOCK lengths (prefix_sums' block_sums_kernel), and each
  program of the segment kernel adds the sums of the blocks before its segment's and the lengths before it in its
  block (_ends_program).
On the H100, 4096 segments of 0-200 rows of 128 values in Inductor's graph (benchmarks/results/README.md, thirty-sixth
session): "block_scan" takes 2.6-2.7 us where "cumsum" takes 4.9-5.0, in the bf16 max gradient
(91.8-91.9 us in all against 94.2-94.4) and the forwards (max and sum, bf16 and fp32: 2.2-2.5 us less); "block_sums"
costs the segment kernels more than it saves (bf16 max gradient 100.4-100.6 us, max forward 48.5-48.7).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..prefix_sums import block_sums_kernel
from ..triton_launch import launch
from .calls import SegmentCall

LENGTHS_TO_ENDS = ("block_scan", "cumsum", "block_sums")
SUMS_BLOCK = 128  # "block_sums": lengths per block sum; a segment kernel's program reads up to this many of each
SCAN_BLOCK = 1024  # "block_scan": lengths a program scans
SCAN_BEFORE = 4096  # "block_scan": lengths before its block a program sums in one load
MOST_STEPS = 4  # loads in a row of what lies before a program's block, past which its way is refused


def steps(way: str, segments: int) -> int:
    """The most loads one after another a program makes of what lies before its block, by `way` over `segments`
    (what each program reads grows with the segments before it: these ways suit thousands, not millions)."""
    if way == "block_scan":
        return -(-segments // SCAN_BEFORE)
    if way == "block_sums":
        return -(-segments // (SUMS_BLOCK * SUMS_BLOCK))
    return 0


@triton.jit
def lengths_ends_kernel(lengths_ptr, ends_ptr, segments, BLOCK: tl.constexpr, BEFORE: tl.constexpr):
    """ends[i] = lengths[0] + ... + lengths[i] over the program's BLOCK segments: its block's lengths scanned, plus
    the sum of every length before the block, BEFORE at a time (up to 4 * BEFORE segments, one load of each: on
    sm_90, ptxas issues all but the block's second half before the first reduction)."""
    first = tl.program_id(0) * BLOCK
    offs = first + tl.arange(0, BLOCK)
    lengths = tl.load(lengths_ptr + offs, mask=offs < segments, other=0)
    k = tl.arange(0, BEFORE)
    before = tl.sum(tl.load(lengths_ptr + k, mask=k < first, other=0).to(tl.int64), 0)
    for chunk in range(BEFORE, first, BEFORE):
        before += tl.sum(tl.load(lengths_ptr + chunk + k, mask=chunk + k < first, other=0).to(tl.int64), 0)
    ends = tl.cumsum(lengths.to(tl.int64), 0) + before
    tl.store(ends_ptr + offs, ends.to(ends_ptr.dtype.element_ty), mask=offs < segments)


def sums_block(way: str) -> int:
    """The SUMS_BLOCK constexpr of the segment kernels for `way`: SUMS_BLOCK for "block_sums", else 0."""
    return SUMS_BLOCK if way == "block_sums" else 0


def segment_ends(index: torch.Tensor, call: SegmentCall, way: str) -> tuple[torch.Tensor, torch.Tensor]:
    """What _ends_program reads: (offsets given as they are; else, by `way` of LENGTHS_TO_ENDS, the lengths'
    inclusive running sum [segments], or the lengths themselves), and the lengths' block sums for "block_sums"
    (else the first tensor again, unread)."""
    if not call.by_lengths:
        return index.contiguous(), index
    if way == "cumsum":
        ends = index.cumsum(0, dtype=index.dtype)
        return ends, ends
    lengths = index.contiguous()
    if way == "block_scan":
        ends = torch.empty_like(lengths)
        launch(lengths_ends_kernel, (triton.cdiv(call.segments, SCAN_BLOCK),), lengths, ends, call.segments,
               BLOCK=SCAN_BLOCK, BEFORE=SCAN_BEFORE, num_warps=8)
        return ends, ends
    sums = torch.empty_like(lengths)  # one per segment, not per block: a symbolic count of blocks costs a guard
    launch(block_sums_kernel, (triton.cdiv(call.segments, SUMS_BLOCK),), lengths, sums, call.segments,
           BLOCK=SUMS_BLOCK, num_warps=4, num_stages=1)
    return lengths, sums
