"""Triton clamped bucket ids (kevolve::bucketize_clamp_offset): each program takes a BLOCK_ROWS x BLOCK_COLS tile
of the [rows, per_row] values, read through their strides (a transposed view costs no copy), finds each value's
bucket by one of the family's searches in its row's boundaries (SEARCH: binary, triton_kernel.binary_count, or
kary, triton_kernel.kary_count over the tile flattened), clamps it to the row's length, adds the row's offset and
stores the int64 ids contiguous. Programs walk the row tiles fastest, so that neighbouring programs read
neighbouring columns of a transposed input."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import BucketizeCall
from .triton_kernel import allocate, binary_count, comparable, kary_count, search_steps


@triton.jit
def clamped_buckets_kernel(
    values_ptr,  # [rows, per_row], strides (value_row_stride, value_col_stride)
    boundaries_ptr,  # [rows, length] contiguous, each row sorted
    lengths_ptr,  # [rows, 1] int64, rows lengths_stride apart
    offsets_ptr,  # [rows, 1] int64, rows offsets_stride apart
    out_ptr,  # [rows, per_row] int64 contiguous
    rows,
    per_row,
    length,
    steps,  # search_steps(length, SEARCH, FANOUT)
    value_row_stride,
    value_col_stride,
    lengths_stride,
    offsets_stride,
    row_tiles,  # cdiv(rows, BLOCK_ROWS)
    RIGHT: tl.constexpr,
    HALF: tl.constexpr,  # fp16 / bf16: compared in fp32
    SEARCH: tl.constexpr,  # "binary" | "kary"
    FANOUT: tl.constexpr,  # boundaries per step of the kary search
    BLOCK_ROWS: tl.constexpr,
    BLOCK_COLS: tl.constexpr,
):
    tile = tl.program_id(0)
    r = (tile % row_tiles).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    c = (tile // row_tiles).to(tl.int64) * BLOCK_COLS + tl.arange(0, BLOCK_COLS)
    in_rows = r < rows
    mask = in_rows[:, None] & (c < per_row)[None, :]
    value = comparable(tl.load(values_ptr + r[:, None] * value_row_stride + c[None, :] * value_col_stride,
                                mask=mask, other=0), HALF)
    if SEARCH == "kary":
        flat: tl.constexpr = BLOCK_ROWS * BLOCK_COLS
        starts = tl.reshape(tl.broadcast_to((r * length)[:, None], [BLOCK_ROWS, BLOCK_COLS]), [flat])
        found = kary_count(boundaries_ptr, starts, tl.reshape(value, [flat]), tl.reshape(mask, [flat]), length, steps,
                           FANOUT, RIGHT, HALF)
        count = tl.reshape(found, [BLOCK_ROWS, BLOCK_COLS])
    else:
        count = binary_count(boundaries_ptr, (r * length)[:, None], value, mask, length, steps, RIGHT, HALF)
    limit = tl.load(lengths_ptr + r * lengths_stride, mask=in_rows, other=0)
    offset = tl.load(offsets_ptr + r * offsets_stride, mask=in_rows, other=0)
    ids = tl.minimum(count.to(tl.int64), limit[:, None]) + offset[:, None]
    tl.store(out_ptr + r[:, None] * per_row + c[None, :], ids, mask=mask)


def clamped_buckets(t: dict, call: BucketizeCall, genome: dict) -> list[torch.Tensor]:
    """min(buckets, lengths) + offsets by clamped_buckets_kernel (values in another dtype than the compared one
    converted first, keeping their strides)."""
    values = t["values"].to(call.compare_dtype)
    boundaries = t["boundaries"].to(call.compare_dtype).contiguous()
    lengths, offsets = t["lengths"], t["offsets"]
    (out,) = allocate(t, call)
    row_tiles = triton.cdiv(call.rows, genome["BLOCK_ROWS"])
    launch(clamped_buckets_kernel, (row_tiles * triton.cdiv(call.per_row, genome["BLOCK_COLS"]),), values,
           boundaries, lengths, offsets, out, call.rows, call.per_row, call.length,
           search_steps(call.length, genome["search"], genome["FANOUT"]), values.stride(0), values.stride(1),
           lengths.stride(0), offsets.stride(0), row_tiles, RIGHT=call.right,
           HALF=call.compare_dtype in (torch.float16, torch.bfloat16), SEARCH=genome["search"], FANOUT=genome["FANOUT"],
           BLOCK_ROWS=genome["BLOCK_ROWS"], BLOCK_COLS=genome["BLOCK_COLS"], num_warps=genome["num_warps"])
    return [out]
