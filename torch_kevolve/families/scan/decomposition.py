"""Cumulative sums and products by log-step doubling (Hillis-Steele): after the step of span s every
element combines the 2s elements ending at it. Plain elementwise PyTorch ops, for any device."""
from __future__ import annotations

import torch

from .calls import ScanCall
from .triton_kernel import accumulator

SPANS = ("doubling",)
ACCUMULATORS = {"fp32": torch.float32, "fp64": torch.float64, "int64": torch.int64}


def scan(tensors, call: ScanCall, span: str) -> list[torch.Tensor]:
    (x,) = tensors
    rows = x.reshape(call.outer, call.length, call.inner).to(ACCUMULATORS[accumulator(x.dtype, call.out_dtype)])
    identity = 1 if call.combine == "prod" else 0
    step = 1
    while step < call.length:
        shifted = torch.cat([torch.full_like(rows[:, :step], identity), rows[:, :-step]], 1)
        rows = rows * shifted if call.combine == "prod" else rows + shifted
        step *= 2
    return [rows.to(call.out_dtype).reshape(x.shape)]
