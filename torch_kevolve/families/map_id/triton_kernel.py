"""Triton MapId: each program looks up BLOCK ids, fusing what MapId writes as five ops.

An id's position is the first vocabulary key not below it (bucketize's); SEARCH picks how it is found:
  binary: halving search over the whole vocabulary, about log2(length) dependent loads per id, as Inductor's
          bucketize does (on the H200 the DLRM-sized lookup was bound by those loads, not by bytes);
  radix:  the keys fall into 2^BUCKET_BITS equal-width buckets of [first key, last key]; each bucket's first
          position is found first, by halving the positions (bucket_starts_kernel, one lane per bucket), and an
          id searches its bucket's positions only: on keys spread evenly over their range a bucket holds about
          length / 2^BUCKET_BITS of them, so a couple of loads. Ids outside the range skip the search (position 0,
          or length). Exact on any sorted vocabulary; on a skewed one buckets are longer, so only slower;
  kary:   FANOUT-way search over the whole vocabulary (bucketize's kary_count): FANOUT keys loaded at once per
          step, about log_FANOUT(length) dependent steps, in one launch;
  coarse: every program loads COARSE keys spaced `stride` = ceil(length / COARSE) apart at once (one round trip,
          no dependent loads), halves that table in registers (tl.gather: on-chip, no memory latency per step),
          then halves the one stride of positions it leaves in memory: stride.bit_length() dependent loads
          instead of length.bit_length() (100k keys, COARSE 256: 9 instead of 17), in one launch.
Then the position is clamped to length - 1, and the id gets rows[position] where vocabulary[position] equals
it, default_row elsewhere. Bucket arithmetic is in uint64, so any int64 range fits.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..bucketize.triton_kernel import binary_count, bisect, kary_count, search_steps
from ..triton_launch import launch
from .calls import MapIdCall

SEARCHES = ("radix", "binary", "kary", "coarse")


@triton.jit
def _bucket(key, first, last, BUCKET_BITS: tl.constexpr):
    """The equal-width bucket of `key` in [first, last] (keys in that range; int32 in [0, 2^BUCKET_BITS))."""
    low = first.to(tl.int64).to(tl.uint64)
    width = (last.to(tl.int64).to(tl.uint64) - low) // (1 << BUCKET_BITS) + 1
    return ((key.to(tl.int64).to(tl.uint64) - low) // width).to(tl.int32)


@triton.jit
def bucket_starts_kernel(
    vocabulary_ptr,  # [length] sorted
    starts_ptr,  # [2^BUCKET_BITS + 1] int32 out: the keys in buckets below each bucket, then length
    length,
    steps,  # length.bit_length(): halvings that narrow [0, length] to one position
    BUCKET_BITS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    b = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = b <= (1 << BUCKET_BITS)
    first = tl.load(vocabulary_ptr)
    last = tl.load(vocabulary_ptr + length - 1)
    lo = tl.zeros([BLOCK], dtype=tl.int32)
    hi = lo + length
    for _ in range(steps):  # the first position whose key's bucket is not below b (buckets rise with the keys)
        active = lo < hi
        mid = (lo + hi) // 2
        key = tl.load(vocabulary_ptr + mid, mask=mask & active, other=0)
        below = _bucket(tl.where(active, key, first), first, last, BUCKET_BITS) < b
        lo = tl.where(active & below, mid + 1, lo)
        hi = tl.where(active & ~below, mid, hi)
    tl.store(starts_ptr + b, lo, mask=mask)


@triton.jit
def map_id_kernel(
    ids_ptr,  # [n]
    vocabulary_ptr,  # [length] sorted, ids' dtype
    rows_ptr,  # [length]
    starts_ptr,  # [2^BUCKET_BITS + 1] int32: each bucket's first position, then length (radix only)
    out_ptr,  # [n] rows' dtype
    n,
    length,
    steps,  # search_steps (coarse: of the search within one stride)
    stride,  # coarse: positions between two keys of the coarse table
    default_row,
    SEARCH: tl.constexpr,
    BUCKET_BITS: tl.constexpr,
    FANOUT: tl.constexpr,
    COARSE: tl.constexpr,  # coarse: keys in the table (a power of two)
    BLOCK: tl.constexpr,
):
    e = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = e < n
    x = tl.load(ids_ptr + e, mask=mask, other=0)
    if SEARCH == "kary":
        found = kary_count(vocabulary_ptr, tl.zeros([BLOCK], dtype=tl.int64), x, mask, length, steps, FANOUT, False,
                           False)
    elif SEARCH == "radix":
        first = tl.load(vocabulary_ptr)
        last = tl.load(vocabulary_ptr + length - 1)
        inside = (x >= first) & (x <= last)
        bucket = _bucket(tl.where(inside, x, first), first, last, BUCKET_BITS)
        lo = tl.load(starts_ptr + bucket, mask=mask & inside, other=0)
        hi = tl.load(starts_ptr + bucket + 1, mask=mask & inside, other=0)
        lo = tl.where(x > last, length, lo)
        hi = tl.where(x > last, length, hi)
        found = bisect(vocabulary_ptr, 0, lo, hi, x, mask, steps, False, False)
    elif SEARCH == "coarse":
        j = tl.arange(0, COARSE)
        sampled = (length + stride - 1) // stride
        table = tl.load(vocabulary_ptr + j.to(tl.int64) * stride, mask=j < sampled, other=0)
        lo = tl.zeros([BLOCK], dtype=tl.int32)
        hi = lo + sampled
        for _ in range(COARSE.bit_length()):  # lo: how many table keys are below the id
            active = lo < hi
            mid = tl.minimum((lo + hi) // 2, COARSE - 1)
            below = tl.gather(table, mid, 0) < x
            lo = tl.where(active & below, mid + 1, lo)
            hi = tl.where(active & ~below, mid, hi)
        # the key at (lo - 1) * stride is below the id, the one at lo * stride (if any) is not
        found = bisect(vocabulary_ptr, 0, tl.where(lo > 0, (lo - 1) * stride + 1, 0), tl.minimum(lo * stride, length),
                       x, mask, steps, False, False)
    else:
        found = binary_count(vocabulary_ptr, 0, x, mask, length, steps, False, False)
    position = tl.minimum(found, length - 1)
    key = tl.load(vocabulary_ptr + position, mask=mask, other=0)
    row = tl.load(rows_ptr + position, mask=mask, other=0)
    out = tl.where(key == x, row, default_row)
    tl.store(out_ptr + e, out.to(out_ptr.dtype.element_ty), mask=mask)


def allocate(t: dict, call: MapIdCall) -> list[torch.Tensor]:
    return [torch.empty(call.ids, dtype=call.row_dtype, device=t["ids"].device)]


def bucket_starts(vocabulary: torch.Tensor, genome: dict) -> torch.Tensor:
    """Each radix bucket's first position in `vocabulary` (int32, 2^BUCKET_BITS + 1 entries, the last its
    length), each found by halving the positions (bucket_starts_kernel): one launch, no atomics."""
    buckets = (1 << genome["BUCKET_BITS"]) + 1
    starts = torch.empty(buckets, dtype=torch.int32, device=vocabulary.device)
    launch(bucket_starts_kernel, (triton.cdiv(buckets, genome["BLOCK"]),), vocabulary, starts, vocabulary.numel(),
           vocabulary.numel().bit_length(), BUCKET_BITS=genome["BUCKET_BITS"], BLOCK=genome["BLOCK"],
           num_warps=genome["num_warps"])
    return starts


def coarse_stride(length: int, coarse: int) -> int:
    """Positions between two keys of the coarse search's table of at most `coarse` keys."""
    return -(-length // coarse)


def map_id(t: dict, call: MapIdCall, genome: dict) -> list[torch.Tensor]:
    """The call's rows (one per id), computed by map_id_kernel after, for the radix search, bucket_starts."""
    (out,) = allocate(t, call)
    ids, vocabulary, rows = (t[n].contiguous() for n in ("ids", "vocabulary", "rows"))
    starts = bucket_starts(vocabulary, genome) if genome["SEARCH"] == "radix" else vocabulary
    stride = coarse_stride(call.length, genome["COARSE"])
    steps = stride.bit_length() if genome["SEARCH"] == "coarse" else search_steps(call.length, genome["SEARCH"],
                                                                                    genome["FANOUT"])
    launch(map_id_kernel, (triton.cdiv(call.ids, genome["BLOCK"]),), ids, vocabulary, rows, starts, out, call.ids,
           call.length, steps, stride, call.default_row, SEARCH=genome["SEARCH"], BUCKET_BITS=genome["BUCKET_BITS"],
           FANOUT=genome["FANOUT"], COARSE=genome["COARSE"], BLOCK=genome["BLOCK"], num_warps=genome["num_warps"])
    return [out]
