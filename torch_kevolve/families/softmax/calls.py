"""The softmax calls the family accepts, in normal form, and the Problem each describes.

Every call works on rows along `dim` of a contiguous tensor viewed as [outer, length, inner]:
element k of row (o, i) sits at o * length * inner + k * inner + i.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import Unsupported
from ..dims import static_shape, wrap_dim
from ..schema import bind_arguments, dtype_name, dtype_named

aten = torch.ops.aten
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
FORWARD = {aten._softmax.default: False, aten._log_softmax.default: True}  # overload -> log
SAFE = aten._safe_softmax.default  # softmax whose rows of -inf give 0 instead of NaN; optional output dtype
BACKWARD = {aten._softmax_backward_data.default: False, aten._log_softmax_backward_data.default: True}


@dataclass(frozen=True)
class SoftmaxCall:
    """One call: which way, the [outer, length, inner] split and the output dtype."""

    log: bool
    backward: bool
    safe: bool
    outer: int
    length: int
    inner: int
    out_dtype: torch.dtype

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), out_dtype=dtype_name(self.out_dtype))

    @staticmethod
    def from_params(p: dict) -> "SoftmaxCall":
        return SoftmaxCall(**{**p, "out_dtype": dtype_named(p["out_dtype"])})


def split(shape: Sequence[int], dim: int) -> tuple[int, int, int]:
    """(outer, length, inner) of rows along `dim` (a 0-d tensor is one row of one element)."""
    if not shape:
        return 1, 1, 1
    return math.prod(shape[:dim]), shape[dim], math.prod(shape[dim + 1:])


def describe(overload, args: Sequence, kwargs: dict) -> tuple[SoftmaxCall, tuple[torch.Tensor, ...]]:
    """The SoftmaxCall and the tensor arguments (x,) or (grad_output, output); Unsupported if not ours."""
    a = bind_arguments(overload, args, kwargs)
    if overload == SAFE:
        tensors = (a["self"],)
        log, backward = False, False
        out_dtype = a["dtype"] or a["self"].dtype
    elif overload in FORWARD:
        tensors = (a["self"],)
        log, backward = FORWARD[overload], False
        out_dtype = torch.float32 if a["half_to_float"] else a["self"].dtype
    elif overload in BACKWARD:
        tensors = (a["grad_output"], a["output"])
        log, backward = BACKWARD[overload], True
        out_dtype = a["input_dtype"]
        if tensors[0].shape != tensors[1].shape:
            raise Unsupported("grad_output and output differ in shape")
    else:
        raise Unsupported(f"{overload} is not a softmax of this family")
    for t in tensors:
        if t.dtype not in FLOAT_DTYPES:
            raise Unsupported(f"dtype {t.dtype} is not a real floating-point dtype")
    if out_dtype not in FLOAT_DTYPES:
        raise Unsupported(f"output dtype {out_dtype} is not a real floating-point dtype")
    shape = static_shape(tensors[0], "input")
    dim = wrap_dim(a["dim"], len(shape))
    return SoftmaxCall(log, backward, overload == SAFE, *split(shape, dim), out_dtype), tensors


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, tensors = describe(overload, args, kwargs)
    return Problem(
        family=family,
        op=str(overload),
        params=(("dim_last", call.inner == 1),),
        dims=(("rows", call.outer * call.inner), ("row_length", call.length)),
        dtypes=(("input", dtype_name(tensors[-1].dtype)), ("out", dtype_name(call.out_dtype))),
        contiguous=all(t.is_contiguous() for t in tensors),
    )
