"""Triton reduction of the rows of a contiguous [rows, row_length] matrix, one RowProgram per launch.

One program reduces BLOCK_M rows (or a chunk of their columns), walking them in [BLOCK_M, BLOCK_N] tiles; the
accumulator is fp32 (fp64 for fp64 ends, int64 for integer sums, products and extremes). Long rows split over
several programs per row: a first launch reduces each chunk to a partial (value, and column for arg-extremes), a
second reduces each row's partials and finishes them.
"""
from __future__ import annotations

import dataclasses

import torch
import triton
import triton.language as tl

from ..dims import rows_view
from ..row_tiles import whole_tile_chunks
from ..triton_launch import launch
from .spec import ReductionCall, RowProgram, accumulator

GENOME_CONSTEXPRS = ("BLOCK_M", "BLOCK_N")
SPLITS = (0, 1, 4, 16, 64, 256, 1024)  # programs per row; 0: chosen from the problem (auto_split)
TARGET_PROGRAMS = 1024  # auto_split fills a few waves of an H100/H200's 132 SMs...
MIN_CHUNK = 4096  # ...with chunks long enough to amortise a program and its partial
ACC_DTYPES = {"fp32": torch.float32, "fp64": torch.float64, "int64": torch.int64}


@triton.jit
def _to_accumulator(x, ACC: tl.constexpr):
    if ACC == "fp64":
        y = x.to(tl.float64)
    elif ACC == "int64":
        y = x.to(tl.int64)
    else:
        y = x.to(tl.float32)
    return y


@triton.jit
def _transform(v, order, TRANSFORM: tl.constexpr):
    if TRANSFORM == "neg":
        t = -v
    elif TRANSFORM == "abs":
        t = tl.abs(v)
    elif TRANSFORM == "neg_abs":
        t = -tl.abs(v)
    elif TRANSFORM == "square":
        t = v * v
    elif TRANSFORM == "abs_pow":
        t = tl.exp(tl.log(tl.abs(v)) * order)
    elif TRANSFORM == "nonzero":
        t = (v != 0).to(v.dtype)
    elif TRANSFORM == "is_zero":
        t = (v == 0).to(v.dtype)
    elif TRANSFORM == "exp":
        t = tl.exp(v)
    elif TRANSFORM == "nan_to_zero":
        t = tl.where(v != v, 0, v)
    else:
        t = v
    return t


@triton.jit
def _finish(acc, center, order, divisor, FINISH: tl.constexpr):
    if FINISH == "neg":
        r = -acc
    elif FINISH == "divide":
        r = acc / divisor
    elif FINISH == "sqrt_divide":
        r = tl.sqrt(acc / divisor)
    elif FINISH == "sqrt":
        r = tl.sqrt(acc)
    elif FINISH == "root":
        r = tl.exp(tl.log(acc) / order)
    elif FINISH == "log_add_center":
        r = tl.log(acc) + center
    elif FINISH == "positive":
        r = acc > 0
    elif FINISH == "not":
        r = acc == 0
    else:
        r = acc
    return r


@triton.jit
def _multiply(a, b):
    return a * b


@triton.jit
def reduce_rows_kernel(
    x_ptr,  # [rows, row_length] contiguous
    out_ptr,  # [rows, chunks] one result per row and chunk (chunks: the programs along axis 1)
    companion_ptr,  # [rows, chunks] COMPANION mean: each row's mean; values: the value at the arg-extreme
    columns_ptr,  # [rows, row_length] COLUMNS: the column of the input each element stands for (else None)
    rows,
    row_length,
    chunk,  # columns per program: program (i, j) reduces columns [j * chunk, (j + 1) * chunk) of its rows
    order,  # linalg_vector_norm's ord, for abs_pow / root
    divisor,  # what FINISH divides by: the row length (mean) or max(row_length - correction, 0) (var)
    COMBINE: tl.constexpr,  # sum | prod | max | argmax
    TRANSFORM: tl.constexpr,
    CENTER: tl.constexpr,  # none | mean | max (whole rows only: one chunk per row)
    FINISH: tl.constexpr,
    ACC: tl.constexpr,  # fp32 | fp64 | int64
    COMPANION: tl.constexpr,  # none | mean | values
    COLUMNS: tl.constexpr,  # argmax results are looked up in columns_ptr (the partials of a split row)
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    row = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = row < rows
    base = row.to(tl.int64) * row_length
    cols = tl.arange(0, BLOCK_N)
    chunk_start = tl.program_id(1) * chunk
    chunk_stop = tl.minimum(chunk_start + chunk, row_length)
    # First pass: the statistic every element is centered on (ATen's logsumexp takes 0 for infinite maxima).
    center = _to_accumulator(tl.zeros([BLOCK_M], dtype=tl.float32), ACC)
    if CENTER == "mean":
        for start in range(0, row_length, BLOCK_N):
            col = start + cols
            mask = row_mask[:, None] & (col < row_length)[None, :]
            v = _to_accumulator(tl.load(x_ptr + base[:, None] + col[None, :], mask=mask, other=0), ACC)
            center += tl.sum(v, axis=1)
        center = center / row_length
    elif CENTER == "max":
        center = center - float("inf")
        for start in range(0, row_length, BLOCK_N):
            col = start + cols
            mask = row_mask[:, None] & (col < row_length)[None, :]
            v = _to_accumulator(tl.load(x_ptr + base[:, None] + col[None, :], mask=mask, other=0), ACC)
            center = tl.maximum(center, tl.max(tl.where(mask, v, float("-inf")), axis=1))
        center = tl.where(tl.abs(center) == float("inf"), 0.0, center)
    # Main pass. max/argmax start from the chunk's first element (an identity for any dtype); NaNs are
    # set aside (nan_at: the first NaN's column) because they win over every value.
    in_chunk = tl.zeros_like(row) + chunk_start < chunk_stop
    first = tl.load(x_ptr + base + chunk_start, mask=row_mask & in_chunk, other=0)
    first = _transform(_to_accumulator(first, ACC) - center, order, TRANSFORM)
    if COMBINE == "sum":
        acc = tl.zeros_like(first)
    elif COMBINE == "prod":
        acc = tl.zeros_like(first) + 1
    else:
        acc = first
    arg = tl.zeros([BLOCK_M], dtype=tl.int64) + chunk_start
    nan_at = tl.zeros([BLOCK_M], dtype=tl.int64) + row_length
    for start in range(chunk_start, chunk_stop, BLOCK_N):
        col = start + cols
        mask = row_mask[:, None] & (col < chunk_stop)[None, :]
        v = _to_accumulator(tl.load(x_ptr + base[:, None] + col[None, :], mask=mask, other=0), ACC)
        t = _transform(v - center[:, None], order, TRANSFORM)
        if COMBINE == "sum":
            acc += tl.sum(tl.where(mask, t, 0), axis=1)
        elif COMBINE == "prod":
            acc *= tl.reduce(tl.where(mask, t, 1), 1, _multiply)
        else:
            is_nan = mask & (t != t)
            nan_at = tl.minimum(nan_at, tl.min(tl.where(is_nan, col[None, :], row_length), axis=1))
            t = tl.where(mask & ~is_nan, t, first[:, None])
            tile_best = tl.max(t, axis=1)
            if COMBINE == "argmax":
                # The tile's first column holding its best; strictly greater keeps earlier columns on ties.
                tile_arg = tl.min(tl.where(t == tile_best[:, None], col[None, :], row_length), axis=1)
                arg = tl.where(tile_best > acc, tile_arg, arg)
            acc = tl.maximum(acc, tile_best)
    if COMBINE == "argmax":
        result = tl.where(nan_at < row_length, nan_at, arg)
        if COLUMNS:
            result = tl.load(columns_ptr + base + result, mask=row_mask, other=0)
        if COMPANION == "values":
            if ACC != "int64":
                acc = tl.where(nan_at < row_length, float("nan"), acc)
            center = _finish(acc, center, order, divisor, FINISH)
    else:
        if COMBINE == "max":
            if ACC != "int64":
                acc = tl.where(nan_at < row_length, float("nan"), acc)
        result = _finish(acc, center, order, divisor, FINISH)
    at = row.to(tl.int64) * tl.num_programs(1) + tl.program_id(1)
    tl.store(out_ptr + at, result.to(out_ptr.dtype.element_ty), mask=row_mask)
    if COMPANION != "none":  # the mean, or the values (kept in `center`, unused by argmax programs)
        tl.store(companion_ptr + at, center.to(companion_ptr.dtype.element_ty), mask=row_mask)


def allocate(x: torch.Tensor, call: ReductionCall) -> list[torch.Tensor]:
    """Empty outputs of the call in ATen's order: the reduction, (var, mean) for var_mean/std_mean,
    (values, indices) for max.dim/min.dim."""
    shape = call.out_shape(x.shape)
    outs = [torch.empty(shape, dtype=call.out_dtype, device=x.device)]
    if call.companion != "none":
        outs.append(torch.empty(shape, dtype=x.dtype, device=x.device))
    return outs[::-1] if call.companion == "values" else outs


def divisor(call: ReductionCall, row_length: int) -> float:
    """What the program's finish divides by: the row length, less var's correction (never below 0)."""
    if call.program.center == "mean":
        return max(row_length - call.correction, 0.0)
    return float(row_length)


def auto_split(call: ReductionCall, rows: int, row_length: int) -> int:
    """SPLIT=0's programs per row: 1 for centered programs, else the most (a power of two up to 1024) that keeps
    the grid within TARGET_PROGRAMS and every chunk at least MIN_CHUNK long (so many-row problems stay at 1)."""
    if call.program.center != "none":
        return 1
    split = 1
    while split < SPLITS[-1] and rows * split * 2 <= TARGET_PROGRAMS and row_length >= split * 2 * MIN_CHUNK:
        split *= 2
    return split


def row_chunks(call: ReductionCall, rows: int, row_length: int, genome: dict) -> tuple[int, int]:
    """(chunk, chunks): the columns each program reduces (a whole number of BLOCK_N tiles unless the row is
    one chunk) and the programs per row, for the genome's SPLIT."""
    split = genome["SPLIT"] or auto_split(call, rows, row_length)
    if split == 1 or row_length == 0:
        return row_length, 1
    return whole_tile_chunks(row_length, genome["BLOCK_N"], split)


def _reduce_pass(x: torch.Tensor, out: torch.Tensor, companion: torch.Tensor, columns: torch.Tensor | None,
                 call: ReductionCall, program: RowProgram, companion_kind: str, acc: str, split: tuple[int, int],
                 divide_by: float, genome: dict) -> None:
    """One launch of reduce_rows_kernel over x's rows, `split` = (chunk, chunks) of each row."""
    rows, row_length = x.shape
    chunk, chunks = split
    launch(
        reduce_rows_kernel,
        (triton.cdiv(rows, genome["BLOCK_M"]), chunks),
        x,
        out,
        companion,
        columns,
        rows,
        row_length,
        chunk,
        call.order,
        divide_by,
        COMBINE=program.combine,
        TRANSFORM=program.transform,
        CENTER=program.center,
        FINISH=program.finish,
        ACC=acc,
        COMPANION=companion_kind,
        COLUMNS=columns is not None,
        num_warps=genome["num_warps"],
        num_stages=genome["num_stages"],
        **{name: genome[name] for name in GENOME_CONSTEXPRS},
    )


def reduce(x: torch.Tensor, call: ReductionCall, genome: dict) -> list[torch.Tensor]:
    """The call's outputs, computed by reduce_rows_kernel: one launch, or two when rows are split (the first
    leaves unfinished partials, values and columns for arg-extremes; the second combines and finishes them)."""
    outs = allocate(x, call)
    result, companion = outs[::-1] if call.companion == "values" else (outs + outs)[:2]
    matrix = rows_view(x, call.dims)
    rows, row_length = matrix.shape
    acc = accumulator(call, x.dtype)
    chunk, chunks = row_chunks(call, rows, row_length, genome)
    divide_by = divisor(call, row_length)
    if chunks == 1:
        _reduce_pass(matrix, result, companion, None, call, call.program, call.companion, acc, (chunk, 1), divide_by,
                     genome)
        return outs
    is_arg = call.program.combine == "argmax"
    values = torch.empty((rows, chunks), dtype=ACC_DTYPES[acc], device=x.device)
    columns = torch.empty((rows, chunks), dtype=torch.int64, device=x.device) if is_arg else None
    partial = dataclasses.replace(call.program, finish="none")
    _reduce_pass(matrix, columns if is_arg else values, values, None, call, partial, "values" if is_arg else "none",
                 acc, (chunk, chunks), divide_by, genome)
    combine = RowProgram(call.program.combine, finish=call.program.finish)
    _reduce_pass(values, result, companion, columns, call, combine, call.companion, acc, (chunks, 1), divide_by,
                 genome)
    return outs
