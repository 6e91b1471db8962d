"""Layer norm, RMS norm and their backward in other PyTorch ops, which Inductor compiles for any device.
Arithmetic in fp32 (fp64 for fp64 inputs), like the Triton kernels."""
from __future__ import annotations

import torch

from .calls import LayerNormCall, stats_dtype

VARIANCES = ("centered", "moments")  # mean of squared deviations, or E[x^2] - E[x]^2


def layer_norm(t: dict, call: LayerNormCall, variance: str) -> list[torch.Tensor]:
    """The call's outputs: forward (out, mean, rstd), RMS (out, rstd); backward the wanted ones of
    (grad_input, grad_weight, grad_bias)."""
    x = t["input"]
    wide = torch.float64 if any(v is not None and v.dtype == torch.float64 for v in t.values()) else torch.float32
    rows = x.to(wide).reshape(call.rows, call.length)
    weight = None if t["weight"] is None else t["weight"].to(wide).reshape(call.length)
    if not call.backward:
        mean = rows.new_zeros(call.rows, 1) if call.rms else rows.mean(1, keepdim=True)
        if variance == "centered" or call.rms:
            var = (rows - mean).square().mean(1, keepdim=True)
        else:
            var = (rows.square().mean(1, keepdim=True) - mean.square()).clamp_min(0)
        rstd = (var + call.eps).rsqrt()
        y = (rows - mean) * rstd
        if weight is not None:
            y = y * weight
        if t["bias"] is not None:
            y = y + t["bias"].to(wide).reshape(call.length)
        stats_shape = x.shape[: x.dim() - call.normalized_rank] + (1,) * call.normalized_rank
        stats = (rstd,) if call.rms else (mean, rstd)
        return [y.to(x.dtype).view(x.shape), *(s.to(stats_dtype(x, call.rms)).view(stats_shape) for s in stats)]
    grad = t["grad_out"].to(wide).reshape(call.rows, call.length)
    rstd = t["rstd"].to(wide).reshape(call.rows, 1)
    mean = 0.0 if call.rms else t["mean"].to(wide).reshape(call.rows, 1)
    xhat = (rows - mean) * rstd
    outs = []
    if call.output_mask[0]:
        wg = grad if weight is None else grad * weight
        centering = 0.0 if call.rms else wg.mean(1, keepdim=True)
        dx = rstd * (wg - centering - xhat * (wg * xhat).mean(1, keepdim=True))
        outs.append(dx.to(x.dtype).view(x.shape))
    if call.output_mask[1]:
        outs.append((grad * xhat).sum(0).to(t["weight"].dtype).view(t["weight"].shape))
    if call.output_mask[2]:
        outs.append(grad.sum(0).to(t["bias"].dtype).view(t["bias"].shape))
    return outs
