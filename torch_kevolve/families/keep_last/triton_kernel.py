"""Triton keep_last: copy each segment's kept values to its output positions. STRATEGY picks the work split:
  segments:  each program copies SEGMENTS whole segments, a [SEGMENTS, WIDTH] tile of positions at a time
             (as many tiles as its longest segment needs): no search, contiguous runs in and out; one very long
             segment serialises its program.
  positions: each program fills BLOCK output positions, each finding its segment by halving offsets[1:]
             (bucketize's search, about log2(segments) dependent loads), as Inductor's kernel of the pattern
             does: balanced whatever the segment lengths.
Position p of segment u reads values[ends[u] - kept[u] + p - offsets[u]], a negative index counting from the
end of values (ATen's indexing); the first segment also owns the positions before offsets[0]. Positions from
offsets[segments] on belong to no segment (the pattern's indexing fails there): they are left unwritten.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..bucketize.triton_kernel import bisect
from ..triton_launch import launch
from .calls import KeepLastCall

STRATEGIES = ("segments", "positions")


@triton.jit
def _copy(values_ptr, out_ptr, position, source, mask, n_values):
    source = tl.where(source < 0, source + n_values, source)
    tl.store(out_ptr + position, tl.load(values_ptr + source, mask=mask), mask=mask)


@triton.jit
def keep_last_segments_kernel(
    values_ptr,  # [n_values]
    ends_ptr,  # [segments]
    kept_ptr,  # [segments]
    offsets_ptr,  # [segments + 1]
    out_ptr,  # [total]
    segments,
    n_values,
    total,
    SEGMENTS: tl.constexpr,
    WIDTH: tl.constexpr,
):
    u = tl.program_id(0).to(tl.int64) * SEGMENTS + tl.arange(0, SEGMENTS)
    mask = u < segments
    start = tl.load(offsets_ptr + u, mask=mask, other=0).to(tl.int64)
    stop = tl.minimum(tl.load(offsets_ptr + u + 1, mask=mask, other=0).to(tl.int64), total)
    first = tl.maximum(tl.where(u == 0, 0, start), 0)
    shift = (tl.load(ends_ptr + u, mask=mask, other=0).to(tl.int64)
             - tl.load(kept_ptr + u, mask=mask, other=0).to(tl.int64) - start)  # source - position
    longest = tl.max(tl.where(mask, stop - first, 0), axis=0)
    for step in range(0, longest, WIDTH):
        position = first[:, None] + step + tl.arange(0, WIDTH)[None, :]
        inside = mask[:, None] & (position < stop[:, None])
        _copy(values_ptr, out_ptr, position, shift[:, None] + position, inside, n_values)


@triton.jit
def keep_last_positions_kernel(
    values_ptr,  # [n_values]
    ends_ptr,  # [segments]
    kept_ptr,  # [segments]
    offsets_ptr,  # [segments + 1]
    out_ptr,  # [total]
    segments,
    n_values,
    total,
    steps,  # segments.bit_length(): halvings that narrow [0, segments] to one segment
    BLOCK: tl.constexpr,
):
    position = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = position < total
    lo = tl.zeros([BLOCK], dtype=tl.int32)
    u = bisect(offsets_ptr, 1, lo, lo + segments, position, mask, steps, True, False)
    mask = mask & (u < segments)
    shift = (tl.load(ends_ptr + u, mask=mask, other=0).to(tl.int64)
             - tl.load(kept_ptr + u, mask=mask, other=0).to(tl.int64)
             - tl.load(offsets_ptr + u, mask=mask, other=0).to(tl.int64))
    _copy(values_ptr, out_ptr, position, shift + position, mask, n_values)


def allocate(t: dict, call: KeepLastCall) -> list[torch.Tensor]:
    return [torch.empty(call.total, dtype=call.value_dtype, device=t["values"].device)]


def keep_last(t: dict, call: KeepLastCall, genome: dict) -> list[torch.Tensor]:
    """The call's packed kept values, by the genome's STRATEGY."""
    (out,) = allocate(t, call)
    values, ends, kept, offsets = (t[n].contiguous() for n in ("values", "ends", "kept", "offsets"))
    if genome["STRATEGY"] == "segments":
        launch(keep_last_segments_kernel, (triton.cdiv(call.segments, genome["SEGMENTS"]),), values, ends, kept,
               offsets, out, call.segments, call.values, call.total, SEGMENTS=genome["SEGMENTS"],
               WIDTH=genome["WIDTH"], num_warps=genome["num_warps"])
    else:
        launch(keep_last_positions_kernel, (triton.cdiv(call.total, genome["BLOCK"]),), values, ends, kept, offsets,
               out, call.segments, call.values, call.total, call.segments.bit_length(), BLOCK=genome["BLOCK"],
               num_warps=genome["num_warps"])
    return [out]
