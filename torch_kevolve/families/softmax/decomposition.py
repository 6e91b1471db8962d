"""Softmax, log-softmax and their backward in other PyTorch ops (max-shifted exponentials), which
Inductor compiles for any device. Arithmetic in fp32 (fp64 for fp64), like the Triton kernels."""
from __future__ import annotations

import torch

from .calls import SoftmaxCall

NORMALIZERS = ("divide", "reciprocal")


def softmax(tensors, call: SoftmaxCall, normalizer: str) -> list[torch.Tensor]:
    """The call's output (forward: tensors = (x,); backward: (grad_output, output))."""
    wide = torch.float64 if torch.float64 in [t.dtype for t in tensors] + [call.out_dtype] else torch.float32
    rows = [t.contiguous().view(call.outer, call.length, call.inner).to(wide) for t in tensors]
    if call.backward:
        g, y = rows
        if call.log:
            out = g - y.exp() * g.sum(1, keepdim=True)
        else:
            out = y * (g - (g * y).sum(1, keepdim=True))
    else:
        (x,) = rows
        shifted = x - x.amax(1, keepdim=True) if call.length else x
        e = shifted.exp()
        total = e.sum(1, keepdim=True)
        if call.log:
            out = shifted - total.log()
        else:
            out = e / total if normalizer == "divide" else e * total.reciprocal()
        if call.safe:
            out = torch.where(x.amax(1, keepdim=True) == -torch.inf, 0.0, out) if call.length else out
    return [out.to(call.out_dtype).view(tensors[0].shape)]
