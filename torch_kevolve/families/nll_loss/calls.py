"""The nll_loss calls the family accepts, in normal form, and the Problem each describes.

Input is [batch, classes] (or [classes] with a 0-d target: one sample), or for nll_loss2d
[batch, classes, H, W] with an [batch, H, W] target: every target element is one row of `classes`
log-probabilities, `inner` = H * W apart. Reduction 0 none, 1 mean, 2 sum.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import Unsupported
from ..dims import static_shape
from ..schema import bind_arguments, dtype_name

aten = torch.ops.aten
FORWARD, BACKWARD = aten.nll_loss_forward.default, aten.nll_loss_backward.default
FORWARD_2D, BACKWARD_2D = aten.nll_loss2d_forward.default, aten.nll_loss2d_backward.default
OVERLOADS = (FORWARD, BACKWARD, FORWARD_2D, BACKWARD_2D)
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
NONE, MEAN, SUM = 0, 1, 2


@dataclass(frozen=True)
class NllLossCall:
    """One call: rows (target elements), classes, spatial size, reduction, ignore_index, class weights."""

    backward: bool
    rows: int
    classes: int
    inner: int  # H * W for nll_loss2d, else 1
    loss_shape: tuple[int, ...]  # the target's shape: reduction none's output
    reduction: int
    ignore_index: int
    has_weight: bool

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), loss_shape=list(self.loss_shape))

    @staticmethod
    def from_params(p: dict) -> "NllLossCall":
        return NllLossCall(**{**p, "loss_shape": tuple(p["loss_shape"])})


def describe(overload, args: Sequence, kwargs: dict) -> tuple[NllLossCall, dict]:
    """The NllLossCall and the call's tensors by name; Unsupported if the call is not ours."""
    if overload not in OVERLOADS:
        raise Unsupported(f"{overload} is not an nll_loss of this family")
    a = bind_arguments(overload, args, kwargs)
    x, target, weight = a["self"], a["target"], a["weight"]
    shape = static_shape(x, "self")
    if overload in (FORWARD_2D, BACKWARD_2D):
        if len(shape) != 4 or tuple(target.shape) != shape[:1] + shape[2:]:
            raise Unsupported(f"nll_loss2d takes [N, C, H, W] input and [N, H, W] target, not {list(shape)}")
        classes, inner = shape[1], shape[2] * shape[3]
    elif len(shape) not in (1, 2) or tuple(target.shape) != shape[:-1]:
        raise Unsupported(f"input of shape {list(shape)} with a target of shape {list(target.shape)}")
    else:
        classes, inner = shape[-1], 1
    if target.dtype not in (torch.int64, torch.int32, torch.uint8):
        raise Unsupported(f"target dtype {target.dtype} is not an integer class index")
    if x.dtype not in FLOAT_DTYPES:
        raise Unsupported(f"input dtype {x.dtype} is not a real floating-point dtype")
    if weight is not None and (tuple(weight.shape) != (classes,) or weight.dtype != x.dtype):
        raise Unsupported(f"weight must be [{classes}] of dtype {x.dtype}")
    if a["reduction"] not in (NONE, MEAN, SUM):
        raise Unsupported(f"reduction {a['reduction']} is not 0, 1 or 2")
    if not isinstance(a["ignore_index"], int):
        raise Unsupported("symbolic ignore_index is not supported")
    tensors = {"self": x, "target": target, "weight": weight}
    backward = overload in (BACKWARD, BACKWARD_2D)
    if backward:
        tensors.update(grad_output=a["grad_output"], total_weight=a["total_weight"])
    call = NllLossCall(backward, target.numel(), classes, inner, tuple(target.shape), a["reduction"],
                       a["ignore_index"], weight is not None)
    return call, tensors


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, tensors = describe(overload, args, kwargs)
    return Problem(
        family=family,
        op=str(overload),
        params=(("reduction", call.reduction), ("ignore_index", call.ignore_index), ("weight", call.has_weight),
                ("rank", tensors["self"].dim())),
        dims=(("batch", call.rows // call.inner), ("classes", call.classes), ("inner", call.inner)),
        dtypes=(("self", dtype_name(tensors["self"].dtype)), ("target", dtype_name(tensors["target"].dtype))),
        contiguous=tensors["self"].is_contiguous(),
    )
