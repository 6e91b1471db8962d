"""Triton jagged <-> padded-dense copies (no arithmetic; values pass through fp32 for the padding select).

to_padded: program (b, j) writes padded rows [j * BLOCK_N, (j + 1) * BLOCK_N) of segment b: row l is
           values[offsets[b] + l] while l < min(length_b, max_length), else the padding value.
to_jagged: program j writes packed rows [j * BLOCK_N, (j + 1) * BLOCK_N); each row finds its segment
           by binary search over the offsets and copies dense[b, l], or 0 where l >= max_length (the
           rows a truncating forward dropped) or no segment holds the row.
Both walk the inner dim in BLOCK_D tiles.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import JaggedCall

GENOME_CONSTEXPRS = ("BLOCK_N", "BLOCK_D")


@triton.jit
def jagged_to_padded_kernel(
    values_ptr,  # [total, inner] contiguous
    offsets_ptr,  # [batch + 1]
    out_ptr,  # [batch, max_length, inner] contiguous
    max_length,
    inner,
    padding_value,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    b = tl.program_id(0)
    rows = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    start = tl.load(offsets_ptr + b).to(tl.int64)
    length = tl.minimum(tl.load(offsets_ptr + b + 1).to(tl.int64) - start, max_length)
    present = (rows < length)[:, None]
    written = (rows < max_length)[:, None]
    src = (start + rows)[:, None] * inner
    dst = (b.to(tl.int64) * max_length + rows)[:, None] * inner
    for d0 in range(0, inner, BLOCK_D):
        d = d0 + tl.arange(0, BLOCK_D)[None, :]
        in_d = d < inner
        x = tl.load(values_ptr + src + d, mask=present & in_d, other=0).to(tl.float32)
        x = tl.where(present, x, padding_value)
        tl.store(out_ptr + dst + d, x.to(out_ptr.dtype.element_ty), mask=written & in_d)


@triton.jit
def padded_to_jagged_kernel(
    dense_ptr,  # [batch, max_length, inner] contiguous
    offsets_ptr,  # [batch + 1]
    out_ptr,  # [total, inner] contiguous
    batch,
    max_length,
    total,
    inner,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    search_steps = 0  # batch's bit length: enough halvings to narrow [0, batch) to one segment
    remaining = batch
    while remaining > 0:
        remaining = remaining // 2
        search_steps += 1
    # seg: the last segment starting at or before the row (lo <= seg < hi throughout)
    lo = tl.zeros([BLOCK_N], dtype=tl.int32)
    hi = tl.full([BLOCK_N], batch, dtype=tl.int32)
    for _ in range(search_steps):
        mid = (lo + hi) // 2
        after = tl.load(offsets_ptr + mid).to(tl.int64) <= rows
        lo = tl.where(after, mid, lo)
        hi = tl.where(after, hi, mid)
    start = tl.load(offsets_ptr + lo).to(tl.int64)
    end = tl.load(offsets_ptr + lo + 1).to(tl.int64)
    l = rows - start
    copied = ((rows >= start) & (rows < end) & (l < max_length))[:, None]
    src = (lo.to(tl.int64) * max_length + l)[:, None] * inner
    dst = rows[:, None] * inner
    written = (rows < total)[:, None]
    for d0 in range(0, inner, BLOCK_D):
        d = d0 + tl.arange(0, BLOCK_D)[None, :]
        in_d = d < inner
        x = tl.load(dense_ptr + src + d, mask=copied & in_d & written, other=0)
        tl.store(out_ptr + dst + d, x, mask=written & in_d)


def allocate(t: dict, call: JaggedCall) -> list[torch.Tensor]:
    source = t["source"]
    return [torch.empty(call.out_shape, dtype=source.dtype, device=source.device)]


def convert(t: dict, call: JaggedCall, genome: dict) -> list[torch.Tensor]:
    """The call's output, computed by the kernels."""
    source, offsets = t["source"].contiguous(), t["offsets"].contiguous()
    (out,) = allocate(t, call)
    if not call.to_padded and call.batch == 0:
        return [out.zero_()]  # no segment holds any row
    options = dict(num_warps=genome["num_warps"], num_stages=genome["num_stages"],
                   **{name: genome[name] for name in GENOME_CONSTEXPRS})
    if call.to_padded:
        grid = (call.batch, triton.cdiv(call.max_length, genome["BLOCK_N"]))
        launch(jagged_to_padded_kernel, grid, source, offsets, out, call.max_length, call.inner, call.padding_value,
               **options)
    else:
        grid = (triton.cdiv(call.total, genome["BLOCK_N"]),)
        launch(padded_to_jagged_kernel, grid, source, offsets, out, call.batch, call.max_length, call.total,
               call.inner, **options)
    return [out]
