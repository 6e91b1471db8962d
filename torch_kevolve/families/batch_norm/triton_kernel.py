"""Triton batch norm, forward and backward: one program per channel walks that channel's
batch * inner elements of the contiguous [batch, channels, inner] view in BLOCK steps.
Arithmetic in fp32 (fp64 for fp64 inputs).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import BatchNormCall

GENOME_CONSTEXPRS = ("BLOCK",)


@triton.jit
def _channel_offsets(k, channel, channels, inner):
    """Offsets of the channel's elements number k (k = n * inner + i) in [batch, channels, inner]."""
    return (k // inner).to(tl.int64) * channels * inner + channel * inner + k % inner


@triton.jit
def _channel_stats(x_ptr, running_mean_ptr, running_var_ptr, channel, channels, inner, count, eps,
                   TRAINING: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr):
    """(mean, invstd, biased variance) of the channel: its batch statistics when TRAINING, else its running ones."""
    acc_type = tl.float64 if FP64 else tl.float32
    if TRAINING:
        total = tl.zeros([BLOCK], dtype=acc_type)
        for start in range(0, count, BLOCK):
            k = start + tl.arange(0, BLOCK)
            offs = _channel_offsets(k, channel, channels, inner)
            total += tl.load(x_ptr + offs, mask=k < count, other=0.0).to(acc_type)
        mean = tl.sum(total, axis=0) / count
        squares = tl.zeros([BLOCK], dtype=acc_type)
        for start in range(0, count, BLOCK):
            k = start + tl.arange(0, BLOCK)
            offs = _channel_offsets(k, channel, channels, inner)
            centered = tl.load(x_ptr + offs, mask=k < count, other=0.0).to(acc_type) - mean
            squares += tl.where(k < count, centered * centered, 0.0)
        var = tl.sum(squares, axis=0) / count
    else:
        mean = tl.load(running_mean_ptr + channel).to(acc_type)
        var = tl.load(running_var_ptr + channel).to(acc_type)
    return mean, 1.0 / tl.sqrt(var + eps), var


@triton.jit
def batch_norm_forward_kernel(
    x_ptr,  # [batch, channels, inner] contiguous
    w_ptr,  # [channels] (read when HAS_WEIGHT)
    b_ptr,  # [channels] (read when HAS_BIAS)
    running_mean_ptr,  # [channels] (read unless TRAINING, and for NEW_RUNNING_STATS)
    running_var_ptr,  # [channels]
    out_ptr,  # like x
    save_mean_ptr,  # [channels] batch mean (written when TRAINING)
    save_invstd_ptr,  # [channels] 1 / sqrt(biased batch variance + eps) (written when TRAINING)
    new_mean_ptr,  # [channels] (1 - momentum) * running_mean + momentum * mean (NEW_RUNNING_STATS)
    new_var_ptr,  # [channels] the same with the unbiased batch variance (NEW_RUNNING_STATS)
    channels,
    inner,
    count,  # batch * inner
    momentum,
    eps,
    TRAINING: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    NEW_RUNNING_STATS: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    channel = tl.program_id(0)
    mean, invstd, var = _channel_stats(x_ptr, running_mean_ptr, running_var_ptr, channel, channels, inner, count,
                                       eps, TRAINING, FP64, BLOCK)
    scale = invstd
    if HAS_WEIGHT:
        scale = scale * tl.load(w_ptr + channel).to(scale.dtype)
    shift = -mean * scale
    if HAS_BIAS:
        shift = shift + tl.load(b_ptr + channel).to(scale.dtype)
    for start in range(0, count, BLOCK):
        k = start + tl.arange(0, BLOCK)
        offs = _channel_offsets(k, channel, channels, inner)
        x = tl.load(x_ptr + offs, mask=k < count, other=0.0).to(scale.dtype)
        tl.store(out_ptr + offs, (x * scale + shift).to(out_ptr.dtype.element_ty), mask=k < count)
    if TRAINING:
        tl.store(save_mean_ptr + channel, mean.to(save_mean_ptr.dtype.element_ty))
        tl.store(save_invstd_ptr + channel, invstd.to(save_invstd_ptr.dtype.element_ty))
    if NEW_RUNNING_STATS:
        old_mean = tl.load(running_mean_ptr + channel).to(mean.dtype)
        old_var = tl.load(running_var_ptr + channel).to(mean.dtype)
        unbiased = var * count / (count - 1)  # NaN for a single element, as in ATen
        tl.store(new_mean_ptr + channel, ((1 - momentum) * old_mean + momentum * mean).to(new_mean_ptr.dtype.element_ty))
        tl.store(new_var_ptr + channel, ((1 - momentum) * old_var + momentum * unbiased).to(new_var_ptr.dtype.element_ty))


@triton.jit
def batch_norm_backward_kernel(
    grad_ptr,  # [batch, channels, inner] contiguous gradient of the output
    x_ptr,  # like grad
    w_ptr,  # [channels] (read when HAS_WEIGHT)
    mean_ptr,  # [channels] save_mean when TRAINING, else running_mean
    var_ptr,  # [channels] save_invstd when TRAINING, else running_var
    dx_ptr,  # like grad (written when WANT_INPUT)
    dw_ptr,  # [channels] sum of grad * xhat (written when WANT_WEIGHT)
    db_ptr,  # [channels] sum of grad (written when WANT_BIAS)
    channels,
    inner,
    count,
    eps,
    TRAINING: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    WANT_INPUT: tl.constexpr,
    WANT_WEIGHT: tl.constexpr,
    WANT_BIAS: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    # xhat = (x - mean) * invstd; training: dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat));
    # inference (constant statistics): dx = w * invstd * g.
    acc_type = tl.float64 if FP64 else tl.float32
    channel = tl.program_id(0)
    mean = tl.load(mean_ptr + channel).to(acc_type)
    if TRAINING:
        invstd = tl.load(var_ptr + channel).to(acc_type)
    else:
        invstd = 1.0 / tl.sqrt(tl.load(var_ptr + channel).to(acc_type) + eps)
    sum_g = tl.zeros([BLOCK], dtype=acc_type)
    sum_g_xhat = tl.zeros([BLOCK], dtype=acc_type)
    for start in range(0, count, BLOCK):
        k = start + tl.arange(0, BLOCK)
        offs = _channel_offsets(k, channel, channels, inner)
        g = tl.load(grad_ptr + offs, mask=k < count, other=0.0).to(acc_type)
        xhat = (tl.load(x_ptr + offs, mask=k < count, other=0.0).to(acc_type) - mean) * invstd
        sum_g += g
        sum_g_xhat += tl.where(k < count, g * xhat, 0.0)
    total_g = tl.sum(sum_g, axis=0)
    total_g_xhat = tl.sum(sum_g_xhat, axis=0)
    scale = invstd
    if HAS_WEIGHT:
        scale = scale * tl.load(w_ptr + channel).to(acc_type)
    if WANT_INPUT:
        for start in range(0, count, BLOCK):
            k = start + tl.arange(0, BLOCK)
            offs = _channel_offsets(k, channel, channels, inner)
            g = tl.load(grad_ptr + offs, mask=k < count, other=0.0).to(acc_type)
            if TRAINING:
                xhat = (tl.load(x_ptr + offs, mask=k < count, other=0.0).to(acc_type) - mean) * invstd
                g = g - (total_g + xhat * total_g_xhat) / count
            tl.store(dx_ptr + offs, (scale * g).to(dx_ptr.dtype.element_ty), mask=k < count)
    if WANT_WEIGHT:
        tl.store(dw_ptr + channel, total_g_xhat.to(dw_ptr.dtype.element_ty))
    if WANT_BIAS:
        tl.store(db_ptr + channel, total_g.to(db_ptr.dtype.element_ty))


def allocate(t: dict, call: BatchNormCall) -> list[torch.Tensor]:
    """Empty outputs: forward (out, save_mean, save_invstd[, new running mean, new running var]) with
    empty saved statistics in inference; backward the wanted ones of (grad_input, grad_weight, grad_bias)."""
    x = t["input"]
    if call.backward:
        per_channel = torch.empty(call.channels, dtype=x.dtype, device=x.device)
        likes = (x, t["weight"] if t["weight"] is not None else per_channel, per_channel)
        return [torch.empty(like.shape, dtype=like.dtype, device=x.device)
                for like, wanted in zip(likes, call.output_mask) if wanted]
    saved = call.channels if call.training else 0
    outs = [torch.empty(x.shape, dtype=x.dtype, device=x.device)]
    outs += [torch.empty(saved, dtype=x.dtype, device=x.device) for _ in range(2)]
    if call.new_running_stats:
        outs += [torch.empty(call.channels, dtype=t[name].dtype, device=x.device) for name in ("running_mean", "running_var")]
    return outs


def batch_norm(t: dict, call: BatchNormCall, genome: dict) -> list[torch.Tensor]:
    """The call's outputs (see `allocate`), computed by the kernels."""
    outs = allocate(t, call)
    t = {name: None if v is None else v.contiguous() for name, v in t.items()}
    x = t["input"]
    count = call.batch * call.inner
    options = dict(TRAINING=call.training, HAS_WEIGHT=call.has_weight, FP64=x.dtype == torch.float64,
                   BLOCK=genome["BLOCK"], num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    if call.backward:
        wanted = iter(outs)
        dx, dw, db = (next(wanted) if m else None for m in call.output_mask)
        stats = ("save_mean", "save_invstd") if call.training else ("running_mean", "running_var")
        launch(batch_norm_backward_kernel, (call.channels,), t["grad_out"], x, t["weight"],
               *(t[name] for name in stats), dx, dw, db, call.channels, call.inner, count, call.eps,
               WANT_INPUT=dx is not None, WANT_WEIGHT=dw is not None, WANT_BIAS=db is not None, **options)
        return outs
    out, save_mean, save_invstd, *new_stats = outs
    new_mean, new_var = new_stats or (None, None)
    launch(batch_norm_forward_kernel, (call.channels,), x, t["weight"], t["bias"], t["running_mean"],
           t["running_var"], out, save_mean, save_invstd, new_mean, new_var, call.channels, call.inner, count,
           call.momentum, call.eps, HAS_BIAS=call.has_bias, NEW_RUNNING_STATS=call.new_running_stats, **options)
    return outs
