"""Group norm and its backward in other PyTorch ops, which Inductor compiles for any device.
Arithmetic in fp32 (fp64 for fp64 inputs), like the Triton kernels."""
from __future__ import annotations

import torch

from .calls import GroupNormCall
from .triton_kernel import allocate

VARIANCES = ("centered", "moments")  # mean of squared deviations, or E[x^2] - E[x]^2


def group_norm(t: dict, call: GroupNormCall, variance: str) -> list[torch.Tensor]:
    """The call's outputs (see triton_kernel.allocate)."""
    x = t["input"]
    wide = torch.float64 if any(v is not None and v.dtype == torch.float64 for v in t.values()) else torch.float32
    n, c, hw, groups = call.batch, call.channels, call.inner, call.groups
    grouped = x.to(wide).reshape(n, groups, c // groups, hw)
    per_channel = lambda name: t[name].to(wide).reshape(1, groups, c // groups, 1)  # noqa: E731
    likes = allocate(t, call)
    if not call.backward:
        mean = grouped.mean((2, 3), keepdim=True)
        if variance == "centered":
            var = (grouped - mean).square().mean((2, 3), keepdim=True)
        else:
            var = (grouped.square().mean((2, 3), keepdim=True) - mean.square()).clamp_min(0)
        rstd = (var + call.eps).rsqrt()
        y = (grouped - mean) * rstd
        if t["weight"] is not None:
            y = y * per_channel("weight")
        if t["bias"] is not None:
            y = y + per_channel("bias")
        return [r.to(like.dtype).reshape(like.shape) for r, like in zip((y, mean, rstd), likes)]
    g = t["grad_out"].to(wide).reshape(grouped.shape)
    mean, rstd = (t[name].to(wide).reshape(n, groups, 1, 1) for name in ("mean", "rstd"))
    xhat = (grouped - mean) * rstd
    results = []
    if call.output_mask[0]:
        wg = g if t["weight"] is None else g * per_channel("weight")
        results.append(rstd * (wg - wg.mean((2, 3), keepdim=True) - xhat * (wg * xhat).mean((2, 3), keepdim=True)))
    if call.output_mask[1]:
        results.append((g * xhat).sum((0, 3)))
    if call.output_mask[2]:
        results.append(g.sum((0, 3)))
    return [r.to(like.dtype).reshape(like.shape) for r, like in zip(results, likes)]
