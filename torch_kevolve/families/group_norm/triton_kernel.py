"""Triton group norm: the layer-norm row kernels with per-channel affine parameters (rows are
(batch, group)); the weight and bias gradients in two passes: programs of (channel, chunk of its batch x inner
elements) write partial sums [splits, channels] (at most PARAM_SPLIT chunks), then layer norm's kernel sums
the partials of each channel (deterministic: no atomics).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..batch_norm.triton_kernel import _channel_offsets
from ..layer_norm.calls import stats_dtype
from ..layer_norm.triton_kernel import (GENOME_CONSTEXPRS, layer_norm_backward_input_kernel, layer_norm_forward_kernel,
                                        param_partials, params_options, row_chunks, sum_partials)
from ..triton_launch import launch
from .calls import GroupNormCall


@triton.jit
def group_norm_backward_params_kernel(
    grad_ptr,  # [batch, channels, inner] contiguous gradient of the output
    x_ptr,  # like grad
    mean_ptr,  # [batch, groups]
    rstd_ptr,  # [batch, groups]
    dw_partial_ptr,  # [splits, channels] per chunk: sum of grad * xhat (written when WANT_WEIGHT)
    db_partial_ptr,  # [splits, channels] per chunk: sum of grad (written when WANT_BIAS)
    channels,
    inner,
    count,  # batch * inner: the elements k = n * inner + i of one channel
    groups,
    per_split,  # elements of one chunk, a multiple of BLOCK_N; chunk s is k in [s * per_split, (s + 1) * per_split)
    WANT_WEIGHT: tl.constexpr,
    WANT_BIAS: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    # Pass 1 of the parameter gradients: program (channel, chunk) sums the chunk's elements of its channel.
    acc_type = tl.float64 if FP64 else tl.float32
    channel = tl.program_id(0)
    group = channel // (channels // groups)
    first = tl.program_id(1) * per_split
    dw = tl.zeros([BLOCK_N], dtype=acc_type)
    db = tl.zeros([BLOCK_N], dtype=acc_type)
    for start in range(0, per_split, BLOCK_N):
        k = first + start + tl.arange(0, BLOCK_N)
        mask = k < count
        offs = _channel_offsets(k, channel, channels, inner)
        g = tl.load(grad_ptr + offs, mask=mask, other=0.0).to(acc_type)
        if WANT_WEIGHT:
            stat = (k // inner) * groups + group
            mean = tl.load(mean_ptr + stat, mask=mask, other=0.0).to(acc_type)
            rstd = tl.load(rstd_ptr + stat, mask=mask, other=0.0).to(acc_type)
            dw += g * (tl.load(x_ptr + offs, mask=mask, other=0.0).to(acc_type) - mean) * rstd
        db += g
    partial = tl.program_id(1).to(tl.int64) * channels + channel
    if WANT_WEIGHT:
        tl.store(dw_partial_ptr + partial, tl.sum(dw, axis=0))
    if WANT_BIAS:
        tl.store(db_partial_ptr + partial, tl.sum(db, axis=0))


def _backward_params(grad, x, mean, rstd, dw, db, call: GroupNormCall, genome: dict, fp64: bool) -> None:
    """Fill dw and db (either may be None) with their per-channel sums over batch and inner: partial sums per
    chunk of each channel's elements, then their total (layer norm's second pass over [splits, channels])."""
    count = call.batch * call.inner
    per_split, splits = row_chunks(count, genome, "BLOCK_N")
    partials = param_partials(dw, db, splits, call.channels, fp64, x.device)
    options = params_options(dw, db, genome, fp64)
    launch(group_norm_backward_params_kernel, (call.channels, splits), grad, x, mean, rstd, *partials, call.channels,
           call.inner, count, call.groups, per_split, BLOCK_N=genome["BLOCK_N"], **options)
    sum_partials(partials, dw, db, splits, call.channels, genome, options)


def allocate(t: dict, call: GroupNormCall) -> list[torch.Tensor]:
    """Empty outputs: forward (out, mean [N, group], rstd [N, group]); backward the wanted ones of
    (grad_input, grad_weight, grad_bias)."""
    x = t["input"]
    if not call.backward:
        stats = [torch.empty(call.batch, call.groups, dtype=stats_dtype(x, False), device=x.device) for _ in range(2)]
        return [torch.empty(x.shape, dtype=x.dtype, device=x.device), *stats]
    per_channel = torch.empty(call.channels, dtype=x.dtype, device=x.device)
    likes = (x, t["weight"] if t["weight"] is not None else per_channel, per_channel)
    return [torch.empty(like.shape, dtype=like.dtype, device=x.device) for like, wanted in zip(likes, call.output_mask)
            if wanted]


def group_norm(t: dict, call: GroupNormCall, genome: dict) -> list[torch.Tensor]:
    """The call's outputs (see `allocate`), computed by the kernels."""
    outs = allocate(t, call)
    t = {name: None if v is None else v.contiguous() for name, v in t.items()}
    x, weight = t["input"], t["weight"]
    fp64 = any(v is not None and v.dtype == torch.float64 for v in t.values())
    options = dict(RMS=False, PER_CHANNEL=True, FP64=fp64, num_warps=genome["num_warps"],
                   num_stages=genome["num_stages"], **{name: genome[name] for name in GENOME_CONSTEXPRS})
    row_grid = (triton.cdiv(call.rows, genome["BLOCK_M"]),)
    if not call.backward:
        launch(layer_norm_forward_kernel, row_grid, x, weight, t["bias"], *outs, call.rows, call.length, call.groups,
               call.inner, call.eps, HAS_WEIGHT=weight is not None, HAS_BIAS=t["bias"] is not None, **options)
        return outs
    wanted = iter(outs)
    dx, dw, db = (next(wanted) if m else None for m in call.output_mask)
    grad, mean, rstd = t["grad_out"], t["mean"], t["rstd"]
    if dx is not None:
        launch(layer_norm_backward_input_kernel, row_grid, grad, x, mean, rstd, weight, dx, call.rows, call.length,
               call.groups, call.inner, HAS_WEIGHT=weight is not None, **options)
    if dw is not None or db is not None:
        _backward_params(grad, x, mean, rstd, dw, db, call, genome, fp64)
    return outs
