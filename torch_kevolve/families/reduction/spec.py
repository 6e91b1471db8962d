"""What each reduction overload computes, as a row program: center, transform, combine, finish.

Every output element reduces one row of the [rows, row_length] view (dims.rows_view):
    c = center(row)                      none | max | mean          (a first pass, when needed)
    t = transform(x - c)                 per element
    a = combine(t)                       sum | prod | max | argmax
    out = finish(a)                      e.g. divide by the row length, sqrt, log(a) + c
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import Unsupported
from ..dims import kept_shape, reduced_dims, static_shape
from ..schema import bind_arguments, dtype_name, dtype_named

aten = torch.ops.aten

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
INT_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


@dataclass(frozen=True)
class RowProgram:
    """The per-row steps of one reduction (see the module docstring)."""

    combine: str  # sum | prod | max | argmax
    transform: str = "none"  # none | neg | abs | neg_abs | square | abs_pow | nonzero | is_zero | exp | nan_to_zero
    center: str = "none"  # none | max | mean
    finish: str = "none"  # none | neg | divide | sqrt_divide | sqrt | root | log_add_center | positive | not


SUM, PROD = RowProgram("sum"), RowProgram("prod")
NANSUM, COUNT_NONZERO = RowProgram("sum", transform="nan_to_zero"), RowProgram("sum", transform="nonzero")
MEAN = RowProgram("sum", finish="divide")
AMAX, AMIN = RowProgram("max"), RowProgram("max", transform="neg", finish="neg")
ARGMAX, ARGMIN = RowProgram("argmax"), RowProgram("argmax", transform="neg")
# max.dim / min.dim: the arg-extreme and, finished, its value
MAX_DIM, MIN_DIM = RowProgram("argmax", finish="none"), RowProgram("argmax", transform="neg", finish="neg")
VAR = RowProgram("sum", transform="square", center="mean", finish="divide")
STD = RowProgram("sum", transform="square", center="mean", finish="sqrt_divide")
LOGSUMEXP = RowProgram("sum", transform="exp", center="max", finish="log_add_center")
ANY = RowProgram("sum", transform="nonzero", finish="positive")
ALL = RowProgram("sum", transform="is_zero", finish="not")
NORMS = {  # linalg_vector_norm by order
    0.0: RowProgram("sum", transform="nonzero"),
    1.0: RowProgram("sum", transform="abs"),
    2.0: RowProgram("sum", transform="square", finish="sqrt"),
    math.inf: RowProgram("max", transform="abs"),
    -math.inf: RowProgram("max", transform="neg_abs", finish="neg"),
}
GENERAL_NORM = RowProgram("sum", transform="abs_pow", finish="root")

# overload -> (program, argument naming the dims, an empty dim list reduces everything)
OVERLOADS = {
    aten.sum.default: (SUM, None, True),
    aten.sum.dim_IntList: (SUM, "dim", True),
    aten.nansum.default: (NANSUM, "dim", True),
    aten.count_nonzero.default: (COUNT_NONZERO, "dim", True),
    aten.count_nonzero.dim_IntList: (COUNT_NONZERO, "dim", True),
    aten.mean.default: (MEAN, None, True),
    aten.mean.dim: (MEAN, "dim", True),
    aten.prod.default: (PROD, None, True),
    aten.prod.dim_int: (PROD, "dim", True),
    aten.amax.default: (AMAX, "dim", True),
    aten.amin.default: (AMIN, "dim", True),
    aten.argmax.default: (ARGMAX, "dim", True),
    aten.argmin.default: (ARGMIN, "dim", True),
    aten.var.correction: (VAR, "dim", True),
    aten.std.correction: (STD, "dim", True),
    aten.var_mean.correction: (VAR, "dim", True),
    aten.std_mean.correction: (STD, "dim", True),
    aten.linalg_vector_norm.default: (None, "dim", True),
    aten.logsumexp.default: (LOGSUMEXP, "dim", True),
    aten.max.dim: (MAX_DIM, "dim", True),
    aten.min.dim: (MIN_DIM, "dim", True),
    aten.max.default: (AMAX, None, True),
    aten.min.default: (AMIN, None, True),
    aten.any.default: (ANY, None, True),
    aten.any.dim: (ANY, "dim", True),
    aten.any.dims: (ANY, "dim", False),
    aten.all.default: (ALL, None, True),
    aten.all.dim: (ALL, "dim", True),
    aten.all.dims: (ALL, "dim", False),
}
# overloads returning a second tensor: the mean (var_mean, std_mean: (result, mean)) or the values
# of the arg-extremes (max.dim, min.dim: (values, indices))
COMPANIONS = {aten.var_mean.correction: "mean", aten.std_mean.correction: "mean", aten.max.dim: "values",
              aten.min.dim: "values"}
INTEGER_KEEPING = (SUM, NANSUM, PROD, AMAX, AMIN)  # integer inputs reduce in int64
FLOAT_ONLY = (MEAN, VAR, STD)


@dataclass(frozen=True)
class ReductionCall:
    """One reduction call in normal form: its program, reduced dims and everything the kernel needs."""

    program: RowProgram
    dims: tuple[int, ...]
    keepdim: bool
    out_dtype: torch.dtype
    order: float  # linalg_vector_norm's ord (unused elsewhere)
    correction: float  # var/std's correction (unused elsewhere)
    companion: str  # none | mean | values (see COMPANIONS)

    def params(self) -> dict:
        """JSON-serialisable form (custom-op params)."""
        return dict(program=dataclasses.asdict(self.program), dims=list(self.dims), keepdim=self.keepdim,
                    out_dtype=dtype_name(self.out_dtype), order=self.order,
                    correction=self.correction, companion=self.companion)

    @staticmethod
    def from_params(p: dict) -> "ReductionCall":
        return ReductionCall(RowProgram(**p["program"]), tuple(p["dims"]), p["keepdim"], dtype_named(p["out_dtype"]),
                             p["order"], p["correction"], p["companion"])

    def out_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        return kept_shape(shape, self.dims, self.keepdim)


def describe(overload, args: Sequence, kwargs: dict, dtype_if_absent: torch.dtype | None = None) -> ReductionCall:
    """The ReductionCall of an ATen reduction; Unsupported for calls outside the family.

    `dtype_if_absent`: the output dtype to use when the call's keyword-only `dtype` is not given
    (a rewritten node passes only positional arguments; the problem remembers the dtype).
    """
    if overload not in OVERLOADS:
        raise Unsupported(f"{overload} is not a reduction of this family")
    program, dim_name, empty_means_all = OVERLOADS[overload]
    a = bind_arguments(overload, args, kwargs)
    x = a["self"]
    shape = static_shape(x, "self")
    if x.dtype not in FLOAT_DTYPES + INT_DTYPES:
        raise Unsupported(f"dtype {x.dtype} is not supported (complex and float8 are not)")
    order = float(a.get("ord", 2))
    if program is None:
        program = NORMS.get(order, GENERAL_NORM)
    dims = reduced_dims(a[dim_name] if dim_name else None, len(shape), empty_means_all)
    if overload == aten.logsumexp.default and not a["dim"]:
        raise Unsupported("logsumexp over an empty dim list")
    row_length = math.prod(shape[d] for d in dims)
    if row_length == 0 and program.combine in ("max", "argmax"):
        raise Unsupported(f"{overload} of an empty dimension has no identity (ATen raises)")
    correction = a.get("correction")
    return ReductionCall(
        program=program,
        dims=dims,
        keepdim=bool(a.get("keepdim", False)),
        out_dtype=_out_dtype(program, x.dtype, a.get("dtype") or dtype_if_absent, overload),
        order=order,
        correction=1.0 if correction is None else float(correction),
        companion=COMPANIONS.get(overload, "none"),
    )


def _out_dtype(program: RowProgram, dtype: torch.dtype, requested, overload) -> torch.dtype:
    is_int = dtype in INT_DTYPES
    if program in (ANY, ALL):
        return torch.uint8 if dtype == torch.uint8 else torch.bool
    if program.combine == "argmax" or overload in (aten.count_nonzero.default, aten.count_nonzero.dim_IntList):
        return torch.int64
    if requested is not None:
        if requested not in FLOAT_DTYPES + INT_DTYPES:
            raise Unsupported(f"output dtype {requested} is not supported")
        return requested
    if is_int and program in FLOAT_ONLY or is_int and overload == aten.linalg_vector_norm.default:
        raise Unsupported(f"{overload} needs a floating-point input (ATen raises for {dtype})")
    if is_int and program in INTEGER_KEEPING:
        return dtype if program in (AMAX, AMIN) else torch.int64
    if is_int:
        return torch.get_default_dtype()
    return dtype


def accumulator(call: ReductionCall, in_dtype: torch.dtype) -> str:
    """The kernel's accumulator: fp64 when either end is fp64, int64 for integer sums, products and
    (arg-)extremes of integers, else fp32."""
    if torch.float64 in (in_dtype, call.out_dtype):
        return "fp64"
    if call.program.combine == "argmax":
        return "int64" if in_dtype in INT_DTYPES else "fp32"
    if call.program == COUNT_NONZERO and call.out_dtype == torch.int64:  # count_nonzero (not the 0-norm):
        return "int64" if in_dtype in INT_DTYPES else "fp64"  # floats are tested untruncated, counts stay exact
    if call.out_dtype in INT_DTYPES and call.program in INTEGER_KEEPING:
        return "int64"
    return "fp32"


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    """The Problem of a reduction call: its [rows, row_length] extents, program and dtypes."""
    call = describe(overload, args, kwargs)
    x = bind_arguments(overload, args, kwargs)["self"]
    row_length = math.prod(x.shape[d] for d in call.dims)
    rows = math.prod(x.shape) // row_length if row_length else math.prod(call.out_shape(x.shape))
    kept = [d for d in range(x.dim()) if d not in call.dims]
    return Problem(
        family=family,
        op=str(overload),
        params=(("dims_last", list(call.dims) == list(range(len(kept), x.dim()))), ("keepdim", call.keepdim),
                ("order", call.order), ("correction", call.correction), ("combine", call.program.combine),
                ("center", call.program.center), ("accumulator", accumulator(call, x.dtype))),
        dims=(("rows", rows), ("row_length", row_length)),
        dtypes=(("self", dtype_name(x.dtype)), ("out", dtype_name(call.out_dtype))),
        contiguous=x.is_contiguous(),
    )
