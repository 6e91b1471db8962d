"""The scan calls the family accepts, in normal form, and the Problem each describes.

Rows run along `dim` of the input viewed as [outer, length, inner] (softmax.calls.split).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import Unsupported
from ..dims import static_shape, wrap_dim
from ..reduction.spec import FLOAT_DTYPES, INT_DTYPES
from ..schema import bind_arguments, dtype_name, dtype_named
from ..softmax.calls import split

aten = torch.ops.aten
COMBINES = {aten.cumsum.default: "sum", aten.cumprod.default: "prod"}


@dataclass(frozen=True)
class ScanCall:
    """One call: sum or product, the [outer, length, inner] split, the output dtype."""

    combine: str
    outer: int
    length: int
    inner: int
    out_dtype: torch.dtype

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), out_dtype=dtype_name(self.out_dtype))

    @staticmethod
    def from_params(p: dict) -> "ScanCall":
        return ScanCall(**{**p, "out_dtype": dtype_named(p["out_dtype"])})


def describe(overload, args: Sequence, kwargs: dict, dtype_if_absent: torch.dtype | None = None) -> tuple[ScanCall, tuple]:
    """The ScanCall and the tensors (x,); Unsupported if the call is not ours. `dtype_if_absent`: the
    keyword-only dtype a problem remembers (rewritten nodes pass positional arguments only)."""
    if overload not in COMBINES:
        raise Unsupported(f"{overload} is not a scan of this family")
    a = bind_arguments(overload, args, kwargs)
    x = a["self"]
    shape = static_shape(x, "self")
    if x.dtype not in FLOAT_DTYPES + INT_DTYPES:
        raise Unsupported(f"dtype {x.dtype} is not supported (complex is not)")
    out_dtype = a["dtype"] or dtype_if_absent or (torch.int64 if x.dtype in INT_DTYPES else x.dtype)
    if out_dtype not in FLOAT_DTYPES + INT_DTYPES or out_dtype == torch.bool:
        raise Unsupported(f"output dtype {out_dtype} is not supported")
    dim = wrap_dim(a["dim"], len(shape))
    return ScanCall(COMBINES[overload], *split(shape, dim), out_dtype), (x,)


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, (x,) = describe(overload, args, kwargs)
    return Problem(
        family=family,
        op=str(overload),
        params=(("dim_last", call.inner == 1),),
        dims=(("rows", call.outer * call.inner), ("row_length", call.length)),
        dtypes=(("self", dtype_name(x.dtype)), ("out", dtype_name(call.out_dtype))),
        contiguous=x.is_contiguous(),
    )
