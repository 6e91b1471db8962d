"""Triton layer norm and RMS norm (RMS: no centering) over the rows of a contiguous [rows, row_length]
view, forward and backward.

forward:  one program normalizes BLOCK_M rows in BLOCK_N steps (mean, then centered variance, then write).
backward: grad_input row by row as forward; grad_weight/grad_bias in two passes: programs of (BLOCK_N
          columns, chunk of rows) write partial sums [splits, length] (at most PARAM_SPLIT chunks), then a
          small kernel sums the partials of each column (deterministic: no atomics).
Arithmetic in fp32 (fp64 for fp64 inputs).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..row_tiles import whole_tile_chunks
from ..triton_launch import launch
from .calls import LayerNormCall, stats_dtype

GENOME_CONSTEXPRS = ("BLOCK_M", "BLOCK_N")


@triton.jit
def _affine(ptr, row, col, mask, length, groups, inner, PER_CHANNEL: tl.constexpr):
    """Each element's affine parameter: by column (layer norm), or PER_CHANNEL (group norm, whose rows
    are (batch, group) and columns (channel in group, inner)) by channel (row % groups) * cpg + col // inner."""
    if PER_CHANNEL:
        channels_per_group = length // inner
        v = tl.load(ptr + (row % groups)[:, None] * channels_per_group + (col // inner)[None, :], mask=mask, other=0.0)
    else:
        v = tl.load(ptr + col, mask=col < length, other=0.0)[None, :]
    return v


@triton.jit
def layer_norm_forward_kernel(
    x_ptr,  # [rows, length] contiguous
    w_ptr,  # [length] or, PER_CHANNEL, [channels] (read when HAS_WEIGHT)
    b_ptr,  # like w_ptr (read when HAS_BIAS)
    out_ptr,  # [rows, length]
    mean_ptr,  # [rows] (written unless RMS)
    rstd_ptr,  # [rows] 1 / sqrt(biased variance + eps); RMS: 1 / sqrt(mean of squares + eps)
    rows,
    length,
    groups,  # PER_CHANNEL: rows are (batch, group) ...
    inner,  # ... and columns (channel in group, inner)
    eps,
    HAS_WEIGHT: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    PER_CHANNEL: tl.constexpr,
    RMS: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    acc_type = tl.float64 if FP64 else tl.float32
    row = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = row < rows
    base = row.to(tl.int64) * length
    cols = tl.arange(0, BLOCK_N)
    mean = tl.zeros([BLOCK_M], dtype=acc_type)
    if not RMS:
        for start in range(0, length, BLOCK_N):
            col = start + cols
            mask = row_mask[:, None] & (col < length)[None, :]
            mean += tl.sum(tl.load(x_ptr + base[:, None] + col[None, :], mask=mask, other=0.0).to(acc_type), axis=1)
        mean = mean / length
    squares = tl.zeros([BLOCK_M], dtype=acc_type)
    for start in range(0, length, BLOCK_N):
        col = start + cols
        mask = row_mask[:, None] & (col < length)[None, :]
        x = tl.load(x_ptr + base[:, None] + col[None, :], mask=mask, other=0.0).to(acc_type)
        centered = tl.where(mask, x - mean[:, None], 0.0)
        squares += tl.sum(centered * centered, axis=1)
    rstd = 1.0 / tl.sqrt(squares / length + eps)
    for start in range(0, length, BLOCK_N):
        col = start + cols
        col_mask = col < length
        mask = row_mask[:, None] & col_mask[None, :]
        x = tl.load(x_ptr + base[:, None] + col[None, :], mask=mask, other=0.0).to(acc_type)
        y = (x - mean[:, None]) * rstd[:, None]
        if HAS_WEIGHT:
            y = y * _affine(w_ptr, row, col, mask, length, groups, inner, PER_CHANNEL).to(acc_type)
        if HAS_BIAS:
            y = y + _affine(b_ptr, row, col, mask, length, groups, inner, PER_CHANNEL).to(acc_type)
        tl.store(out_ptr + base[:, None] + col[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)
    if not RMS:
        tl.store(mean_ptr + row, mean.to(mean_ptr.dtype.element_ty), mask=row_mask)
    tl.store(rstd_ptr + row, rstd.to(rstd_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def layer_norm_backward_input_kernel(
    grad_ptr,  # [rows, length] contiguous gradient of the output
    x_ptr,  # [rows, length] contiguous input
    mean_ptr,  # [rows] (read unless RMS)
    rstd_ptr,  # [rows]
    w_ptr,  # [length] or, PER_CHANNEL, [channels] (read when HAS_WEIGHT)
    dx_ptr,  # [rows, length] gradient of the input
    rows,
    length,
    groups,
    inner,
    HAS_WEIGHT: tl.constexpr,
    PER_CHANNEL: tl.constexpr,
    RMS: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    # dx = rstd * (wg - mean(wg) - xhat * mean(wg * xhat)) with wg = grad * weight, xhat = (x - mean) * rstd;
    # RMS norm has no mean: its xhat = x * rstd and dx drops the mean(wg) term.
    acc_type = tl.float64 if FP64 else tl.float32
    row = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = row < rows
    base = row.to(tl.int64) * length
    cols = tl.arange(0, BLOCK_N)
    mean = tl.zeros([BLOCK_M], dtype=acc_type)
    if not RMS:
        mean = tl.load(mean_ptr + row, mask=row_mask, other=0.0).to(acc_type)
    rstd = tl.load(rstd_ptr + row, mask=row_mask, other=0.0).to(acc_type)
    sum_wg = tl.zeros([BLOCK_M], dtype=acc_type)
    sum_wg_xhat = tl.zeros([BLOCK_M], dtype=acc_type)
    for start in range(0, length, BLOCK_N):
        col = start + cols
        col_mask = col < length
        mask = row_mask[:, None] & col_mask[None, :]
        offs = base[:, None] + col[None, :]
        wg = tl.load(grad_ptr + offs, mask=mask, other=0.0).to(acc_type)
        if HAS_WEIGHT:
            wg = wg * _affine(w_ptr, row, col, mask, length, groups, inner, PER_CHANNEL).to(acc_type)
        xhat = (tl.load(x_ptr + offs, mask=mask, other=0.0).to(acc_type) - mean[:, None]) * rstd[:, None]
        if not RMS:
            sum_wg += tl.sum(wg, axis=1)
        sum_wg_xhat += tl.sum(tl.where(mask, wg * xhat, 0.0), axis=1)
    for start in range(0, length, BLOCK_N):
        col = start + cols
        col_mask = col < length
        mask = row_mask[:, None] & col_mask[None, :]
        offs = base[:, None] + col[None, :]
        wg = tl.load(grad_ptr + offs, mask=mask, other=0.0).to(acc_type)
        if HAS_WEIGHT:
            wg = wg * _affine(w_ptr, row, col, mask, length, groups, inner, PER_CHANNEL).to(acc_type)
        xhat = (tl.load(x_ptr + offs, mask=mask, other=0.0).to(acc_type) - mean[:, None]) * rstd[:, None]
        dx = rstd[:, None] * (wg - (sum_wg[:, None] + xhat * sum_wg_xhat[:, None]) / length)
        tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)


@triton.jit
def layer_norm_backward_params_kernel(
    grad_ptr,  # [rows, length] contiguous gradient of the output
    x_ptr,  # [rows, length] contiguous input
    mean_ptr,  # [rows] (read unless RMS)
    rstd_ptr,  # [rows]
    dw_partial_ptr,  # [splits, length] per row chunk: sum of grad * xhat (written when WANT_WEIGHT)
    db_partial_ptr,  # [splits, length] per row chunk: sum of grad (written when WANT_BIAS)
    rows,
    length,
    rows_per_split,  # rows of one chunk; chunk s is rows [s * rows_per_split, (s + 1) * rows_per_split)
    WANT_WEIGHT: tl.constexpr,
    WANT_BIAS: tl.constexpr,
    RMS: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    # Pass 1 of the parameter gradients: program (column block, chunk) sums its chunk's rows.
    acc_type = tl.float64 if FP64 else tl.float32
    col = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = col < length
    first = tl.program_id(1) * rows_per_split
    end = tl.minimum(first + rows_per_split, rows)
    dw = tl.zeros([BLOCK_N], dtype=acc_type)
    db = tl.zeros([BLOCK_N], dtype=acc_type)
    for start in range(0, rows_per_split, BLOCK_M):
        row = first + start + tl.arange(0, BLOCK_M)
        row_mask = row < end
        mask = row_mask[:, None] & col_mask[None, :]
        offs = row.to(tl.int64)[:, None] * length + col[None, :]
        g = tl.load(grad_ptr + offs, mask=mask, other=0.0).to(acc_type)
        if WANT_WEIGHT:
            mean = tl.zeros([BLOCK_M], dtype=acc_type)
            if not RMS:
                mean = tl.load(mean_ptr + row, mask=row_mask, other=0.0).to(acc_type)
            rstd = tl.load(rstd_ptr + row, mask=row_mask, other=0.0).to(acc_type)
            xhat = (tl.load(x_ptr + offs, mask=mask, other=0.0).to(acc_type) - mean[:, None]) * rstd[:, None]
            dw += tl.sum(g * xhat, axis=0)
        if WANT_BIAS:
            db += tl.sum(g, axis=0)
    partial = tl.program_id(1).to(tl.int64) * length + col
    if WANT_WEIGHT:
        tl.store(dw_partial_ptr + partial, dw, mask=col_mask)
    if WANT_BIAS:
        tl.store(db_partial_ptr + partial, db, mask=col_mask)


@triton.jit
def layer_norm_sum_partials_kernel(
    dw_partial_ptr,  # [splits, length] (read when WANT_WEIGHT)
    db_partial_ptr,  # [splits, length] (read when WANT_BIAS)
    dw_ptr,  # [length] column sums of dw_partial, in its own dtype (written when WANT_WEIGHT)
    db_ptr,  # [length] column sums of db_partial (written when WANT_BIAS)
    splits,
    length,
    WANT_WEIGHT: tl.constexpr,
    WANT_BIAS: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    # Pass 2 of the parameter gradients: each program sums BLOCK_N columns of the partials.
    acc_type = tl.float64 if FP64 else tl.float32
    col = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = col < length
    dw = tl.zeros([BLOCK_N], dtype=acc_type)
    db = tl.zeros([BLOCK_N], dtype=acc_type)
    for start in range(0, splits, BLOCK_M):
        split = start + tl.arange(0, BLOCK_M)
        mask = (split < splits)[:, None] & col_mask[None, :]
        offs = split.to(tl.int64)[:, None] * length + col[None, :]
        if WANT_WEIGHT:
            dw += tl.sum(tl.load(dw_partial_ptr + offs, mask=mask, other=0.0), axis=0)
        if WANT_BIAS:
            db += tl.sum(tl.load(db_partial_ptr + offs, mask=mask, other=0.0), axis=0)
    if WANT_WEIGHT:
        tl.store(dw_ptr + col, dw.to(dw_ptr.dtype.element_ty), mask=col_mask)
    if WANT_BIAS:
        tl.store(db_ptr + col, db.to(db_ptr.dtype.element_ty), mask=col_mask)


def row_chunks(rows: int, genome: dict, tile: str = "BLOCK_M") -> tuple[int, int]:
    """(rows_per_split, splits): at most PARAM_SPLIT chunks of whole `tile` (a gene: BLOCK_M, or BLOCK_N for
    chunks of elements) tiles covering the rows."""
    return whole_tile_chunks(rows, genome[tile], genome["PARAM_SPLIT"])


def param_partials(dw, db, splits: int, length: int, fp64: bool, device) -> list:
    """Per-chunk partial-sum buffers [splits, length] in fp32 (fp64) for those of dw and db that are wanted
    (not None); None for the others."""
    acc_dtype = torch.float64 if fp64 else torch.float32
    return [None if out is None else torch.empty(splits, length, dtype=acc_dtype, device=device) for out in (dw, db)]


def params_options(dw, db, genome: dict, fp64: bool) -> dict:
    """The launch options, tiles aside, shared by both passes of the parameter gradients."""
    return dict(WANT_WEIGHT=dw is not None, WANT_BIAS=db is not None, FP64=fp64, num_warps=genome["num_warps"],
                num_stages=genome["num_stages"])


def sum_partials(partials: list, dw, db, splits: int, length: int, genome: dict, options: dict) -> None:
    """Pass 2: dw and db (either may be None) get the column sums of their `param_partials`."""
    tiles = {name: genome[name] for name in GENOME_CONSTEXPRS}
    launch(layer_norm_sum_partials_kernel, (triton.cdiv(length, genome["BLOCK_N"]),), *partials, dw, db, splits,
           length, **tiles, **options)


def _backward_params(grad, x, mean, rstd, dw, db, call: LayerNormCall, genome: dict, fp64: bool) -> None:
    """Fill dw and db (either may be None) with their sums over rows: partial sums per row chunk, then their total."""
    rows_per_split, splits = row_chunks(call.rows, genome)
    partials = param_partials(dw, db, splits, call.length, fp64, x.device)
    options = params_options(dw, db, genome, fp64)
    launch(layer_norm_backward_params_kernel, (triton.cdiv(call.length, genome["BLOCK_N"]), splits), grad, x, mean,
           rstd, *partials, call.rows, call.length, rows_per_split, RMS=call.rms, BLOCK_M=genome["BLOCK_M"],
           BLOCK_N=genome["BLOCK_N"], **options)
    sum_partials(partials, dw, db, splits, call.length, genome, options)


def allocate(t: dict, call: LayerNormCall) -> list[torch.Tensor]:
    """Empty outputs: forward (out, mean, rstd), RMS (out, rstd); backward the wanted ones of
    (grad_input, grad_weight, grad_bias)."""
    x = t["input"]
    if not call.backward:
        stats_shape = x.shape[: x.dim() - call.normalized_rank] + (1,) * call.normalized_rank
        stats = [torch.empty(stats_shape, dtype=stats_dtype(x, call.rms), device=x.device) for _ in range(2 - call.rms)]
        return [torch.empty(x.shape, dtype=x.dtype, device=x.device), *stats]
    shapes = (x, t["weight"], t["bias"])
    return [torch.empty(like.shape, dtype=like.dtype, device=x.device)
            for like, wanted in zip(shapes, call.output_mask) if wanted]


def layer_norm(t: dict, call: LayerNormCall, genome: dict) -> list[torch.Tensor]:
    """The call's outputs (see `allocate`), computed by the kernels."""
    outs = allocate(t, call)
    x = t["input"].contiguous()
    fp64 = any(v is not None and v.dtype == torch.float64 for v in t.values())
    options = dict(RMS=call.rms, FP64=fp64, num_warps=genome["num_warps"], num_stages=genome["num_stages"],
                   **{name: genome[name] for name in GENOME_CONSTEXPRS})
    weight = None if t["weight"] is None else t["weight"].contiguous()
    row_grid = (triton.cdiv(call.rows, genome["BLOCK_M"]),)
    if not call.backward:
        bias = None if t["bias"] is None else t["bias"].contiguous()
        out, *stats = outs
        mean, rstd = [None, *stats] if call.rms else stats
        launch(layer_norm_forward_kernel, row_grid, x, weight, bias, out, mean, rstd, call.rows, call.length, 1, 1,
               call.eps, HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None, PER_CHANNEL=False, **options)
        return outs
    grad, rstd = t["grad_out"].contiguous(), t["rstd"].contiguous()
    mean = None if call.rms else t["mean"].contiguous()
    wanted = iter(outs)
    dx, dw, db = (next(wanted) if m else None for m in call.output_mask)
    if dx is not None:
        launch(layer_norm_backward_input_kernel, row_grid, grad, x, mean, rstd, weight, dx, call.rows, call.length,
               1, 1, HAS_WEIGHT=weight is not None, PER_CHANNEL=False, **options)
    if dw is not None or db is not None:
        _backward_params(grad, x, mean, rstd, dw, db, call, genome, fp64)
    return outs
