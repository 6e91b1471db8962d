"""The nll_loss calls the family accepts, in normal form, and the Problem each describes.

Input is [batch, classes] (or [classes] with a 0-d target: one sample); reduction 0 none, 1 mean, 2 sum.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import Unsupported
from ..dims import static_shape
from ..schema import bind_arguments, dtype_name

aten = torch.ops.aten
FORWARD, BACKWARD = aten.nll_loss_forward.default, aten.nll_loss_backward.default
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
NONE, MEAN, SUM = 0, 1, 2


@dataclass(frozen=True)
class NllLossCall:
    """One call: batch and class counts, reduction, ignore_index, whether class weights are given."""

    backward: bool
    batch: int
    classes: int
    batched: bool  # input is [batch, classes] (else [classes])
    reduction: int
    ignore_index: int
    has_weight: bool

    def params(self) -> dict:
        return dict(vars(self))


def describe(overload, args: Sequence, kwargs: dict) -> tuple[NllLossCall, dict]:
    """The NllLossCall and the call's tensors by name; Unsupported if the call is not ours."""
    if overload not in (FORWARD, BACKWARD):
        raise Unsupported(f"{overload} is not an nll_loss of this family")
    a = bind_arguments(overload, args, kwargs)
    x, target, weight = a["self"], a["target"], a["weight"]
    shape = static_shape(x, "self")
    if len(shape) not in (1, 2) or target.dim() != len(shape) - 1:
        raise Unsupported(f"input of shape {list(shape)} with a {target.dim()}-d target (nll_loss2d is not ours)")
    batch, classes = (shape[0], shape[1]) if len(shape) == 2 else (1, shape[0])
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
    if overload == BACKWARD:
        tensors.update(grad_output=a["grad_output"], total_weight=a["total_weight"])
    call = NllLossCall(overload == BACKWARD, batch, classes, len(shape) == 2, a["reduction"], a["ignore_index"],
                       weight is not None)
    return call, tensors


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, tensors = describe(overload, args, kwargs)
    return Problem(
        family=family,
        op=str(overload),
        params=(("reduction", call.reduction), ("ignore_index", call.ignore_index), ("weight", call.has_weight),
                ("batched", call.batched)),
        dims=(("batch", call.batch), ("classes", call.classes)),
        dtypes=(("self", dtype_name(tensors["self"].dtype)), ("target", dtype_name(tensors["target"].dtype))),
        contiguous=tensors["self"].is_contiguous(),
    )
