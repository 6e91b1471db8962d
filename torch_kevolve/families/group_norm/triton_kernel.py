"""Triton group norm: the layer-norm row kernels with per-channel affine parameters (rows are
(batch, group)), and a per-channel kernel for the weight and bias gradients.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..batch_norm.triton_kernel import _channel_offsets
from ..layer_norm.calls import stats_dtype
from ..layer_norm.triton_kernel import GENOME_CONSTEXPRS, layer_norm_backward_input_kernel, layer_norm_forward_kernel
from ..triton_launch import launch
from .calls import GroupNormCall


@triton.jit
def group_norm_backward_params_kernel(
    grad_ptr,  # [batch, channels, inner] contiguous gradient of the output
    x_ptr,  # like grad
    mean_ptr,  # [batch, groups]
    rstd_ptr,  # [batch, groups]
    dw_ptr,  # [channels] sum over batch and inner of grad * xhat (written when WANT_WEIGHT)
    db_ptr,  # [channels] sum of grad (written when WANT_BIAS)
    channels,
    inner,
    count,  # batch * inner
    groups,
    WANT_WEIGHT: tl.constexpr,
    WANT_BIAS: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    acc_type = tl.float64 if FP64 else tl.float32
    channel = tl.program_id(0)
    group = channel // (channels // groups)
    dw = tl.zeros([BLOCK_N], dtype=acc_type)
    db = tl.zeros([BLOCK_N], dtype=acc_type)
    for start in range(0, count, BLOCK_N):
        k = start + tl.arange(0, BLOCK_N)
        mask = k < count
        offs = _channel_offsets(k, channel, channels, inner)
        g = tl.load(grad_ptr + offs, mask=mask, other=0.0).to(acc_type)
        if WANT_WEIGHT:
            stat = (k // inner) * groups + group
            mean = tl.load(mean_ptr + stat, mask=mask, other=0.0).to(acc_type)
            rstd = tl.load(rstd_ptr + stat, mask=mask, other=0.0).to(acc_type)
            dw += g * (tl.load(x_ptr + offs, mask=mask, other=0.0).to(acc_type) - mean) * rstd
        db += g
    if WANT_WEIGHT:
        tl.store(dw_ptr + channel, tl.sum(dw, axis=0).to(dw_ptr.dtype.element_ty))
    if WANT_BIAS:
        tl.store(db_ptr + channel, tl.sum(db, axis=0).to(db_ptr.dtype.element_ty))


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
    launch_options = dict(FP64=fp64, num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    options = dict(RMS=False, PER_CHANNEL=True, **launch_options, **{name: genome[name] for name in GENOME_CONSTEXPRS})
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
        launch(group_norm_backward_params_kernel, (call.channels,), grad, x, mean, rstd, dw, db, call.channels,
               call.inner, call.batch * call.inner, call.groups, WANT_WEIGHT=dw is not None, WANT_BIAS=db is not None,
               BLOCK_N=genome["BLOCK_N"], **launch_options)
    return outs
