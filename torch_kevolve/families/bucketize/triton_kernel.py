"""Triton bucketize: each program finds the buckets of BLOCK values of the [rows, per_row] view.

SEARCH picks how a value counts the boundaries below it in its row:
  binary: halving search over the row in memory (length.bit_length() steps, any length);
  linear: one pass over the row, a scalar (batched: gathered) load per boundary, for short rows;
  staged: the whole row loaded once into a register tile of STAGED (>= length) boundaries and
          compared with every value at once, for short rows;
  kary:   FANOUT-way search over the row in memory: each step loads FANOUT evenly spaced boundaries of the
          interval at once and keeps the gap between two of them, so about log_FANOUT(length) dependent steps
          where the binary search takes log2(length) (any length; boundaries sorted, as ATen requires).
"below" is not(boundary >= value) (right: not(boundary > value)), as ATen compares, so that a NaN
value counts every boundary. fp16/bf16 are compared in fp32 (exact); others in their own dtype.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import BucketizeCall

SEARCHES = ("binary", "linear", "staged", "kary")
FANOUTS = (8, 4, 16)  # boundaries one step of the kary search loads per value
KARY_LOADS = 1 << 13  # most BLOCK x FANOUT loads one kary step of a program holds


@triton.jit
def comparable(x, HALF: tl.constexpr):
    if HALF:
        y = x.to(tl.float32)
    else:
        y = x
    return y


@triton.jit
def _below(boundary, value, RIGHT: tl.constexpr):
    if RIGHT:
        below = ~(boundary > value)
    else:
        below = ~(boundary >= value)
    return below


@triton.jit
def binary_count(boundaries_ptr, row_start, value, mask, length, steps, RIGHT: tl.constexpr, HALF: tl.constexpr):
    """How many boundaries of the row at `row_start` (broadcast with `value`) are below each value: [0, length]
    halved `steps` times, the loads masked off where `mask` is false or the interval is empty; int32."""
    lo = tl.zeros_like(value).to(tl.int32)
    return bisect(boundaries_ptr, row_start, lo, lo + length, value, mask, steps, RIGHT, HALF)


@triton.jit
def bisect(boundaries_ptr, row_start, lo, hi, value, mask, steps, RIGHT: tl.constexpr, HALF: tl.constexpr):
    """The first position in [lo, hi) (int32, per value) of the row at `row_start` whose boundary is not below
    its value (hi if none), the interval halved `steps` times: the boundaries before lo must be below and those
    from hi on not. Loads are masked off where `mask` is false or the interval is empty."""
    for _ in range(steps):
        active = lo < hi
        mid = (lo + hi) // 2
        boundary = comparable(tl.load(boundaries_ptr + row_start + mid, mask=mask & active, other=0), HALF)
        below = _below(boundary, value, RIGHT)
        lo = tl.where(active & below, mid + 1, lo)
        hi = tl.where(active & ~below, mid, hi)
    return lo


@triton.jit
def kary_count(boundaries_ptr, row_start, value, mask, length, steps, FANOUT: tl.constexpr, RIGHT: tl.constexpr,
               HALF: tl.constexpr):
    """`binary_count`'s result (row_start: int64 per value), found by `steps` (kary_steps) FANOUT-way steps over
    [lo, hi) = [0, length): the boundaries at lo + floor(j * (hi - lo) / FANOUT), j < FANOUT, are loaded at once;
    below ones raise lo past them, the first one not below becomes hi, so the interval keeps at most
    (hi - lo) // FANOUT positions."""
    lo = tl.zeros_like(value).to(tl.int32)
    hi = lo + length
    j = tl.arange(0, FANOUT).to(tl.int64)
    for _ in range(steps):
        width = (hi - lo).to(tl.int64)
        position = lo[:, None] + ((width[:, None] * j[None, :]) // FANOUT).to(tl.int32)
        probed = (mask & (width > 0))[:, None] & (j >= 0)[None, :]  # [values, FANOUT]
        boundary = comparable(tl.load(boundaries_ptr + row_start[:, None] + position, mask=probed, other=0), HALF)
        below = _below(boundary, value[:, None], RIGHT)
        lo = tl.maximum(lo, tl.max(tl.where(probed & below, position + 1, 0), axis=1))
        hi = tl.minimum(hi, tl.min(tl.where(probed & ~below, position, hi[:, None]), axis=1))
    return lo


def kary_steps(length: int, fanout: int) -> int:
    """Steps of kary_count that narrow [0, length] to one position (each leaves at most width // fanout)."""
    steps = 0
    while length:
        length //= fanout
        steps += 1
    return steps


def search_steps(length: int, search: str, fanout: int) -> int:
    """The `steps` argument of the kernels' search over a row of `length`: kary_steps for the kary search,
    length.bit_length() (halvings) for the others."""
    return kary_steps(length, fanout) if search == "kary" else length.bit_length()


def fanout_refusal(search: str, fanout: int, block: int) -> str | None:
    """Why a genome's FANOUT does not fit its search and BLOCK (None if it does): FANOUT varies the kary search
    only, and one kary step of a program loads at most KARY_LOADS keys."""
    if search != "kary":
        return None if fanout == FANOUTS[0] else "FANOUT varies the kary search only"
    if block * fanout > KARY_LOADS:
        return f"BLOCK {block} x FANOUT {fanout} exceeds {KARY_LOADS} loads per kary step"
    return None


@triton.jit
def bucketize_kernel(
    values_ptr,  # [rows, per_row] contiguous
    boundaries_ptr,  # [rows, length] contiguous (rows 1 unless BATCHED), each row sorted
    out_ptr,  # [rows, per_row] int32 / int64 bucket indices
    total,  # rows * per_row
    per_row,
    length,
    steps,  # search_steps: the search's steps that narrow [0, length] to one index
    RIGHT: tl.constexpr,
    HALF: tl.constexpr,  # fp16 / bf16: compared in fp32
    BATCHED: tl.constexpr,
    SEARCH: tl.constexpr,
    STAGED: tl.constexpr,  # register tile of the staged search (power of two >= length)
    FANOUT: tl.constexpr,  # boundaries per step of the kary search
    BLOCK: tl.constexpr,
):
    e = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = e < total
    value = comparable(tl.load(values_ptr + e, mask=mask, other=0), HALF)
    if BATCHED:
        row_start = (e // per_row) * length
    else:
        row_start = tl.zeros([BLOCK], dtype=tl.int64)
    if SEARCH == "binary":
        count = binary_count(boundaries_ptr, row_start, value, mask, length, steps, RIGHT, HALF)
    elif SEARCH == "kary":
        count = kary_count(boundaries_ptr, row_start, value, mask, length, steps, FANOUT, RIGHT, HALF)
    elif SEARCH == "linear":
        count = tl.zeros([BLOCK], dtype=tl.int32)
        for k in range(length):
            if BATCHED:
                boundary = tl.load(boundaries_ptr + row_start + k, mask=mask, other=0)
            else:
                boundary = tl.load(boundaries_ptr + k)
            count += _below(comparable(boundary, HALF), value, RIGHT).to(tl.int32)
    else:
        k = tl.arange(0, STAGED)
        in_row = k < length
        if BATCHED:
            staged = tl.load(boundaries_ptr + row_start[:, None] + k[None, :], mask=mask[:, None] & in_row[None, :],
                             other=0)
        else:
            staged = tl.load(boundaries_ptr + k, mask=in_row, other=0)[None, :]
        below = _below(comparable(staged, HALF), value[:, None], RIGHT) & in_row[None, :]
        count = tl.sum(below.to(tl.int32), axis=1)
    tl.store(out_ptr + e, count.to(out_ptr.dtype.element_ty), mask=mask)


def staged_tile(length: int) -> int:
    """The register tile that holds a row of `length` boundaries."""
    return triton.next_power_of_2(max(length, 1))


def allocate(t: dict, call: BucketizeCall) -> list[torch.Tensor]:
    dtype = torch.int32 if call.out_int32 else torch.int64
    return [torch.empty(call.out_shape, dtype=dtype, device=t["values"].device)]


def bucketize(t: dict, call: BucketizeCall, genome: dict) -> list[torch.Tensor]:
    """The call's bucket indices, computed by bucketize_kernel (mixed dtypes converted to the compared one first)."""
    values = t["values"].to(call.compare_dtype).contiguous()
    boundaries = t["boundaries"].to(call.compare_dtype).contiguous()
    (out,) = allocate(t, call)
    total = out.numel()
    launch(bucketize_kernel, (triton.cdiv(total, genome["BLOCK"]),), values, boundaries, out, total,
           max(call.per_row, 1), call.length, search_steps(call.length, genome["search"], genome["FANOUT"]),
           RIGHT=call.right, HALF=call.compare_dtype in (torch.float16, torch.bfloat16), BATCHED=call.batched,
           SEARCH=genome["search"], STAGED=staged_tile(call.length) if genome["search"] == "staged" else 1,
           FANOUT=genome["FANOUT"], BLOCK=genome["BLOCK"], num_warps=genome["num_warps"])
    return [out]
