"""The batch-norm calls the family accepts, in normal form, and the Problem each describes.

The input [batch, channels, *spatial] is viewed as [batch, channels, inner] (inner: the spatial
product); every statistic is per channel, over batch * inner elements.
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
FORWARD = aten.native_batch_norm.default
INFERENCE = aten._native_batch_norm_legit_no_training.default
FUNCTIONAL = aten._native_batch_norm_legit_functional.default
BACKWARD = aten.native_batch_norm_backward.default
OVERLOADS = (FORWARD, INFERENCE, FUNCTIONAL, BACKWARD)
# fp16/bf16 are refused: the dtype of their saved statistics differs between these overloads and devices.
DTYPES = (torch.float32, torch.float64)


@dataclass(frozen=True)
class BatchNormCall:
    """One call: the [batch, channels, inner] view, training or not, what to read and what to write."""

    backward: bool
    training: bool
    batch: int
    channels: int
    inner: int
    momentum: float
    eps: float
    has_weight: bool
    has_bias: bool
    new_running_stats: bool  # FUNCTIONAL: also return the updated running mean and var
    output_mask: tuple[bool, bool, bool]  # backward: grad_input, grad_weight, grad_bias

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), output_mask=list(self.output_mask))

    @staticmethod
    def from_params(p: dict) -> "BatchNormCall":
        return BatchNormCall(**{**p, "output_mask": tuple(p["output_mask"])})


def describe(overload, args: Sequence, kwargs: dict) -> tuple[BatchNormCall, dict]:
    """The BatchNormCall and the call's tensors by name; Unsupported if the call is not ours."""
    if overload not in OVERLOADS:
        raise Unsupported(f"{overload} is not a batch norm of this family")
    a = bind_arguments(overload, args, kwargs)
    x = a["input"]
    shape = static_shape(x, "input")
    if len(shape) < 2:
        raise Unsupported("input needs a batch and a channel dim")
    training = overload == FUNCTIONAL or (overload in (FORWARD, BACKWARD) and bool(a.get("training", a.get("train"))))
    running = (a["running_mean"], a["running_var"])
    if overload == FORWARD and training and any(r is not None for r in running):
        raise Unsupported("native_batch_norm in training updates running stats in place (functional graphs "
                          "use _native_batch_norm_legit_functional)")
    if not training and any(r is None for r in running):
        raise Unsupported("inference needs running_mean and running_var")
    tensors = {"input": x, "weight": a["weight"], "bias": a.get("bias"), "running_mean": running[0],
               "running_var": running[1]}
    mask = (True, False, False)
    if overload == BACKWARD:
        tensors.update(grad_out=a["grad_out"], save_mean=a["save_mean"], save_invstd=a["save_invstd"])
        mask = tuple(bool(m) for m in a["output_mask"])
        if training and (a["save_mean"] is None or a["save_invstd"] is None):
            raise Unsupported("training backward needs save_mean and save_invstd")
        if mask[1] and a["weight"] is None:
            raise Unsupported("grad_weight of an absent weight is asked for")
    channels = shape[1]
    for name, t in tensors.items():
        if t is None or t.numel() == 0 and name.startswith("save"):
            continue
        if t.dtype not in DTYPES:
            raise Unsupported(f"{name} dtype {t.dtype} is not float32/float64 (half statistics dtypes vary)")
        if name not in ("input", "grad_out") and tuple(t.shape) != (channels,):
            raise Unsupported(f"{name} must have one entry per channel")
    batch, inner = shape[0], math.prod(shape[2:])
    if training and batch * inner == 0:
        raise Unsupported("batch statistics over zero elements")
    call = BatchNormCall(overload == BACKWARD, training, batch, channels, inner, float(a.get("momentum", 0.0)),
                         float(a["eps"]), a["weight"] is not None, tensors["bias"] is not None, overload == FUNCTIONAL,
                         mask)
    return call, tensors


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, tensors = describe(overload, args, kwargs)
    x = tensors["input"]
    return Problem(
        family=family,
        op=str(overload),
        params=(("training", call.training), ("momentum", call.momentum), ("eps", call.eps),
                ("weight", call.has_weight), ("bias", call.has_bias), ("output_mask", list(call.output_mask)),
                ("rank", x.dim())),
        dims=(("batch", call.batch), ("channels", call.channels), ("inner", call.inner)),
        dtypes=(("input", dtype_name(x.dtype)),),
        contiguous=x.is_contiguous(),
    )
