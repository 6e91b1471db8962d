"""nll_loss forward and backward in other PyTorch ops (gather / scatter), which Inductor compiles
for any device. Arithmetic in fp32 (fp64 for fp64 inputs), like the Triton kernels."""
from __future__ import annotations

import torch

from .calls import MEAN, NONE, NllLossCall
from .triton_kernel import allocate

PICKS = ("gather", "one_hot")  # how each row's target entry is picked


def nll_loss(t: dict, call: NllLossCall, pick: str) -> list[torch.Tensor]:
    """The call's outputs: forward (output, total_weight), backward [grad_input]."""
    x = t["self"]
    wide = torch.float64 if x.dtype == torch.float64 else torch.float32
    batch = call.rows // call.inner
    # [rows, classes]: for nll_loss2d the classes of each pixel, row by row
    rows = x.to(wide).reshape(batch, call.classes, call.inner).transpose(1, 2).reshape(call.rows, call.classes)
    target = t["target"].reshape(call.rows).long()
    keep = target != call.ignore_index
    safe = torch.where(keep, target, 0)
    w = keep.to(wide) if t["weight"] is None else t["weight"].to(wide)[safe] * keep
    shapes = [o.shape for o in allocate(t, call)]
    if call.backward:
        g = t["grad_output"].to(wide).reshape(-1)
        if call.reduction == MEAN:
            g = g / t["total_weight"].to(wide)
        d = -(g * w)
        if pick == "gather":
            grad = torch.zeros_like(rows).scatter(1, safe[:, None], d[:, None])
        else:
            grad = torch.nn.functional.one_hot(safe, call.classes).to(wide) * d[:, None]
        grad = grad.reshape(batch, call.inner, call.classes).transpose(1, 2)
        return [grad.to(x.dtype).reshape(shapes[0])]
    if pick == "gather":
        picked = rows.gather(1, safe[:, None])[:, 0]
    else:
        picked = (rows * torch.nn.functional.one_hot(safe, call.classes).to(wide)).sum(1)
    losses = torch.where(keep, -w * picked, 0.0)
    total = w.sum()
    if call.reduction == NONE:
        return [losses.to(x.dtype).view(shapes[0]), total.new_zeros(()).to(x.dtype)]
    out = losses.sum() / total if call.reduction == MEAN else losses.sum()
    return [out.to(x.dtype), total.to(x.dtype)]
