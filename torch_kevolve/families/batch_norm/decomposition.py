"""Batch norm and its backward in other PyTorch ops, which Inductor compiles for any device.
Arithmetic in fp32 (fp64 for fp64 inputs), like the Triton kernels."""
from __future__ import annotations

import torch

from .calls import BatchNormCall
from .triton_kernel import allocate

VARIANCES = ("centered", "moments")  # mean of squared deviations, or E[x^2] - E[x]^2


def batch_norm(t: dict, call: BatchNormCall, variance: str) -> list[torch.Tensor]:
    """The call's outputs (see triton_kernel.allocate)."""
    x = t["input"]
    wide = torch.float64 if x.dtype == torch.float64 else torch.float32
    view = x.to(wide).reshape(call.batch, call.channels, call.inner)
    per_channel = lambda name: t[name].to(wide)[None, :, None]  # noqa: E731
    count = call.batch * call.inner
    likes = allocate(t, call)
    if call.backward:
        g = t["grad_out"].to(wide).reshape(view.shape)
        if call.training:
            mean, invstd = per_channel("save_mean"), per_channel("save_invstd")
        else:
            mean, invstd = per_channel("running_mean"), (per_channel("running_var") + call.eps).rsqrt()
        xhat = (view - mean) * invstd
        sum_g, sum_g_xhat = g.sum((0, 2), keepdim=True), (g * xhat).sum((0, 2), keepdim=True)
        results = []
        if call.output_mask[0]:
            centered = g - (sum_g + xhat * sum_g_xhat) / count if call.training else g
            scale = invstd if t["weight"] is None else invstd * per_channel("weight")
            results.append(scale * centered)
        if call.output_mask[1]:
            results.append(sum_g_xhat)
        if call.output_mask[2]:
            results.append(sum_g)
        return [r.to(like.dtype).reshape(like.shape) for r, like in zip(results, likes)]
    if call.training:
        mean = view.mean((0, 2), keepdim=True)
        if variance == "centered":
            var = (view - mean).square().mean((0, 2), keepdim=True)
        else:
            var = (view.square().mean((0, 2), keepdim=True) - mean.square()).clamp_min(0)
    else:
        mean, var = per_channel("running_mean"), per_channel("running_var")
    invstd = (var + call.eps).rsqrt()
    y = (view - mean) * invstd
    if t["weight"] is not None:
        y = y * per_channel("weight")
    if t["bias"] is not None:
        y = y + per_channel("bias")
    results = [y]
    if call.training:
        results += [mean, invstd]
    else:
        results += [like for like in likes[1:3]]
    if call.new_running_stats:
        unbiased = var * count / (count - 1)  # NaN for a single element, as in ATen
        results += [(1 - call.momentum) * per_channel(name) + call.momentum * stat
                    for name, stat in (("running_mean", mean), ("running_var", unbiased))]
    return [r.to(like.dtype).reshape(like.shape) for r, like in zip(results, likes)]
