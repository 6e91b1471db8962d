"""The group-norm calls the family accepts, in normal form, and the Problem each describes.

The input [N, C, *] is viewed as rows (n, group) of row_length (C / group) * HxW contiguous elements;
weight and bias are per channel.
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
from ..layer_norm.calls import FLOAT_DTYPES
from ..schema import bind_arguments, dtype_name

aten = torch.ops.aten
FORWARD, BACKWARD = aten.native_group_norm.default, aten.native_group_norm_backward.default


@dataclass(frozen=True)
class GroupNormCall:
    """One call: N, C, HxW, groups, eps, affine tensors present, wanted gradients."""

    backward: bool
    batch: int
    channels: int
    inner: int  # HxW
    groups: int
    eps: float
    has_weight: bool
    has_bias: bool
    output_mask: tuple[bool, bool, bool]

    @property
    def rows(self) -> int:
        return self.batch * self.groups

    @property
    def length(self) -> int:
        return self.channels // self.groups * self.inner

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), output_mask=list(self.output_mask))

    @staticmethod
    def from_params(p: dict) -> "GroupNormCall":
        return GroupNormCall(**{**p, "output_mask": tuple(p["output_mask"])})


def describe(overload, args: Sequence, kwargs: dict) -> tuple[GroupNormCall, dict]:
    """The GroupNormCall and the call's tensors by name; Unsupported if the call is not ours."""
    if overload not in (FORWARD, BACKWARD):
        raise Unsupported(f"{overload} is not a group norm of this family")
    a = bind_arguments(overload, args, kwargs)
    x = a["input"]
    shape = static_shape(x, "input")
    n, c, hxw, groups = (a[name] for name in ("N", "C", "HxW", "group"))
    if not all(isinstance(v, int) for v in (n, c, hxw, groups)):
        raise Unsupported("symbolic N, C, HxW or group")
    if math.prod(shape) != n * c * hxw or len(shape) < 2 or shape[:2] != (n, c):
        raise Unsupported(f"input of shape {list(shape)} is not [N={n}, C={c}, HxW={hxw}]")
    if groups < 1 or c % groups:
        raise Unsupported(f"{c} channels do not split into {groups} groups")
    if n * c * hxw == 0:
        raise Unsupported("group norm of an empty input")
    if not x.is_contiguous():
        raise Unsupported("input must be contiguous (ATen refuses other layouts)")
    tensors = {"input": x, "weight": a["weight"], "bias": a.get("bias")}
    mask = (True, False, False)
    if overload == BACKWARD:
        tensors.update(grad_out=a["grad_out"], mean=a["mean"], rstd=a["rstd"])
        mask = tuple(bool(m) for m in a["output_mask"])
        if (mask[1] or mask[2]) and a["weight"] is None:
            raise Unsupported("weight or bias gradients without a weight (ATen's CPU kernel fails on them)")
    for name, t in tensors.items():
        if t is not None and t.dtype not in FLOAT_DTYPES:
            raise Unsupported(f"{name} dtype {t.dtype} is not a real floating-point dtype")
    for name in ("weight", "bias"):
        if tensors[name] is not None and tuple(tensors[name].shape) != (c,):
            raise Unsupported(f"{name} must have one entry per channel")
    call = GroupNormCall(overload == BACKWARD, n, c, hxw, groups, float(a.get("eps", 0.0)),
                         a["weight"] is not None, tensors["bias"] is not None, mask)
    return call, tensors


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, tensors = describe(overload, args, kwargs)
    x = tensors["input"]
    return Problem(
        family=family,
        op=str(overload),
        params=(("eps", call.eps), ("weight", call.has_weight), ("bias", call.has_bias),
                ("output_mask", list(call.output_mask)), ("groups", call.groups)),
        dims=(("batch", call.batch), ("channels", call.channels), ("inner", call.inner),
              ("row_length", call.length)),
        dtypes=(("input", dtype_name(x.dtype)),),
        contiguous=x.is_contiguous(),
        exact_dims=frozenset({"channels"}),
    )
