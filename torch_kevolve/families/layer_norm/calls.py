"""The layer-norm and RMS-norm calls the family accepts, in normal form, and the Problem each describes.

The input is viewed as [rows, row_length]: row_length is the product of normalized_shape. RMS norm
is layer norm without centering (no mean, no bias).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import Unsupported
from ..dims import static_shape
from ..schema import bind_arguments, dtype_name

aten = torch.ops.aten
FORWARD, BACKWARD = aten.native_layer_norm.default, aten.native_layer_norm_backward.default
RMS_FORWARD, RMS_BACKWARD = aten._fused_rms_norm.default, aten._fused_rms_norm_backward.default
OVERLOADS = (FORWARD, BACKWARD, RMS_FORWARD, RMS_BACKWARD)
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


@dataclass(frozen=True)
class LayerNormCall:
    """One call: [rows, row_length], eps, which affine tensors exist, which gradients are wanted."""

    backward: bool
    rms: bool
    rows: int
    length: int
    normalized_rank: int  # how many trailing dims make up one row
    eps: float
    has_weight: bool
    has_bias: bool
    output_mask: tuple[bool, bool, bool]  # backward: grad_input, grad_weight, grad_bias (never for RMS)

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), output_mask=list(self.output_mask))

    @staticmethod
    def from_params(p: dict) -> "LayerNormCall":
        return LayerNormCall(**{**p, "output_mask": tuple(p["output_mask"])})


def stats_dtype(x: torch.Tensor, rms: bool) -> torch.dtype:
    """mean/rstd dtype as ATen makes them: fp32 for half inputs on GPUs (and for RMS norm anywhere),
    else the input's dtype."""
    if (rms or x.device.type != "cpu") and x.dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    return x.dtype


def describe(overload, args: Sequence, kwargs: dict) -> tuple[LayerNormCall, dict]:
    """The LayerNormCall and the call's tensors by name; Unsupported if the call is not ours."""
    if overload not in OVERLOADS:
        raise Unsupported(f"{overload} is not a layer norm of this family")
    a = bind_arguments(overload, args, kwargs)
    rms, backward = overload in (RMS_FORWARD, RMS_BACKWARD), overload in (BACKWARD, RMS_BACKWARD)
    x, weight, bias = a["input"], a["weight"], a.get("bias")
    shape = static_shape(x, "input")
    normalized = tuple(a["normalized_shape"])
    if not normalized or shape[len(shape) - len(normalized):] != normalized or len(normalized) > len(shape):
        raise Unsupported(f"normalized_shape {list(normalized)} is not a non-empty suffix of {list(shape)}")
    length = math.prod(normalized)
    if length == 0:
        raise Unsupported("normalizing over zero elements")
    tensors = {"input": x, "weight": weight, "bias": bias}
    mask = (True, False, False)
    if backward:
        tensors.update(grad_out=a["grad_out"], mean=a.get("mean"), rstd=a["rstd"])
        mask = tuple(bool(m) for m in a["output_mask"]) + (False,) * rms
        if mask[1] and weight is None or mask[2] and bias is None:
            raise Unsupported("a gradient of an absent weight or bias is asked for")
        if tuple(a["grad_out"].shape) != shape:
            raise Unsupported("grad_out and input differ in shape")
    for name, t in tensors.items():
        if t is not None and t.dtype not in FLOAT_DTYPES:
            raise Unsupported(f"{name} dtype {t.dtype} is not a real floating-point dtype")
    for name in ("weight", "bias"):
        if tensors[name] is not None and tuple(tensors[name].shape) != normalized:
            raise Unsupported(f"{name} shape {list(tensors[name].shape)} is not normalized_shape")
    eps = a.get("eps")
    if eps is None:  # RMS norm's default: the machine epsilon of the type it computes in
        eps = torch.finfo(torch.float64 if x.dtype == torch.float64 else torch.float32).eps
    eps = float(eps)
    call = LayerNormCall(backward, rms, math.prod(shape) // length, length, len(normalized), eps, weight is not None,
                         bias is not None, mask)
    return call, tensors


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, tensors = describe(overload, args, kwargs)
    x = tensors["input"]
    return Problem(
        family=family,
        op=str(overload),
        params=(("eps", call.eps), ("weight", call.has_weight), ("bias", call.has_bias),
                ("output_mask", list(call.output_mask))),
        dims=(("rows", call.rows), ("row_length", call.length)),
        dtypes=(("input", dtype_name(x.dtype)), ("stats", dtype_name(stats_dtype(x, call.rms)))),
        contiguous=all(t.is_contiguous() for t in tensors.values() if t is not None),
    )
