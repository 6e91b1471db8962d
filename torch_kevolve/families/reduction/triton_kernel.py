"""Triton reduction of the rows of a contiguous [rows, row_length] matrix, one RowProgram per launch.

One program reduces BLOCK_M rows, walking them in [BLOCK_M, BLOCK_N] tiles; the accumulator is fp32
(fp64 for fp64 ends, int64 for integer sums, products and extremes).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..dims import rows_view
from ..triton_launch import launch
from .spec import ReductionCall, accumulator

GENOME_CONSTEXPRS = ("BLOCK_M", "BLOCK_N")


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
    out_ptr,  # [rows] one result per row
    companion_ptr,  # [rows] COMPANION mean: each row's mean; values: the value at the arg-extreme
    rows,
    row_length,
    order,  # linalg_vector_norm's ord, for abs_pow / root
    divisor,  # what FINISH divides by: the row length (mean) or max(row_length - correction, 0) (var)
    COMBINE: tl.constexpr,  # sum | prod | max | argmax
    TRANSFORM: tl.constexpr,
    CENTER: tl.constexpr,  # none | mean | max
    FINISH: tl.constexpr,
    ACC: tl.constexpr,  # fp32 | fp64 | int64
    COMPANION: tl.constexpr,  # none | mean | values
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    row = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = row < rows
    base = row.to(tl.int64) * row_length
    cols = tl.arange(0, BLOCK_N)
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
    # Main pass. max/argmax start from the row's first element (an identity for any dtype); NaNs are
    # set aside (nan_at: the first NaN's column) because they win over every value.
    first = tl.load(x_ptr + base, mask=row_mask & (tl.zeros_like(row) < row_length), other=0)
    first = _transform(_to_accumulator(first, ACC) - center, order, TRANSFORM)
    if COMBINE == "sum":
        acc = tl.zeros_like(first)
    elif COMBINE == "prod":
        acc = tl.zeros_like(first) + 1
    else:
        acc = first
    arg = tl.zeros([BLOCK_M], dtype=tl.int64)
    nan_at = tl.zeros([BLOCK_M], dtype=tl.int64) + row_length
    for start in range(0, row_length, BLOCK_N):
        col = start + cols
        mask = row_mask[:, None] & (col < row_length)[None, :]
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
        if COMPANION == "values":
            if ACC != "int64":
                acc = tl.where(nan_at < row_length, float("nan"), acc)
            center = _finish(acc, center, order, divisor, FINISH)
    else:
        if COMBINE == "max":
            if ACC != "int64":
                acc = tl.where(nan_at < row_length, float("nan"), acc)
        result = _finish(acc, center, order, divisor, FINISH)
    tl.store(out_ptr + row, result.to(out_ptr.dtype.element_ty), mask=row_mask)
    if COMPANION != "none":  # the mean, or the values (kept in `center`, unused by argmax programs)
        tl.store(companion_ptr + row, center.to(companion_ptr.dtype.element_ty), mask=row_mask)


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


def reduce(x: torch.Tensor, call: ReductionCall, genome: dict) -> list[torch.Tensor]:
    """The call's outputs, computed by reduce_rows_kernel."""
    outs = allocate(x, call)
    result, companion = outs[::-1] if call.companion == "values" else (outs + outs)[:2]
    matrix = rows_view(x, call.dims)
    rows, row_length = matrix.shape
    program = call.program
    launch(
        reduce_rows_kernel,
        (triton.cdiv(rows, genome["BLOCK_M"]),),
        matrix,
        result,
        companion,
        rows,
        row_length,
        call.order,
        divisor(call, row_length),
        COMBINE=program.combine,
        TRANSFORM=program.transform,
        CENTER=program.center,
        FINISH=program.finish,
        ACC=accumulator(call, x.dtype),
        COMPANION=call.companion,
        num_warps=genome["num_warps"],
        num_stages=genome["num_stages"],
        **{name: genome[name] for name in GENOME_CONSTEXPRS},
    )
    return outs
