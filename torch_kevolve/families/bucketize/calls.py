"""The bucketize calls the family accepts, in normal form, and the Problem each describes.

bucketize(values, boundaries) and searchsorted(boundaries, values) both give, for every value, the
number of boundaries below it (right=False: boundaries < value; right=True: boundaries <= value),
comparing in the dtype the two promote to; a NaN value lands past the last boundary. Boundaries are
1-D (any value shape) or, for searchsorted, [*, length] with values [*, n] sharing the leading dims
(one sorted row per leading index). The values are viewed as [rows, per_row]: rows is 1 for 1-D
boundaries, else the number of boundary rows.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import Unsupported
from ..dims import packed_shape, static_shape
from ..reduction.spec import FLOAT_DTYPES, INT_DTYPES
from ..schema import bind_arguments, dtype_name, dtype_named, with_keyword_only

aten = torch.ops.aten
BUCKETIZE, SEARCHSORTED = aten.bucketize.Tensor, aten.searchsorted.Tensor
DTYPES = tuple(d for d in FLOAT_DTYPES + INT_DTYPES if d != torch.bool)


@dataclass(frozen=True)
class BucketizeCall:
    """One call: comparison side, output dtype, the [rows, per_row] view of the values, the boundary
    row length, and the dtype both sides are compared in."""

    right: bool
    out_int32: bool
    batched: bool  # one boundary row per leading index (searchsorted with N-d boundaries)
    rows: int
    per_row: int
    length: int
    out_shape: tuple[int, ...]
    compare_dtype: torch.dtype

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), out_shape=list(self.out_shape), compare_dtype=dtype_name(self.compare_dtype))

    @staticmethod
    def from_params(p: dict) -> "BucketizeCall":
        return BucketizeCall(**{**p, "out_shape": tuple(p["out_shape"]), "compare_dtype": dtype_named(p["compare_dtype"])})


def _side(a: dict) -> bool:
    """The call's `right`, with searchsorted's `side` taking precedence as in ATen."""
    side, right = a.get("side"), a["right"]
    if side is None:
        return right
    if side not in ("left", "right"):
        raise Unsupported(f"side {side!r} is neither 'left' nor 'right'")
    if side == "left" and right:
        raise Unsupported("side='left' and right=True disagree (ATen refuses the call)")
    return side == "right"


def describe(overload, args: Sequence, kwargs: dict, remembered: dict | None = None) -> tuple[BucketizeCall, dict]:
    """The BucketizeCall and the tensors by name (values, boundaries); Unsupported if not ours.
    `remembered`: keyword-only arguments a problem keeps for calls that pass positional ones only."""
    if overload not in (BUCKETIZE, SEARCHSORTED):
        raise Unsupported(f"{overload} is not a bucketize of this family")
    a = bind_arguments(overload, args, with_keyword_only(overload, kwargs, remembered or {}))
    if overload == BUCKETIZE:
        values, boundaries = a["self"], a["boundaries"]
    else:
        values, boundaries = a["self"], a["sorted_sequence"]
        if a["sorter"] is not None:
            raise Unsupported("a sorter permutation is not supported")
    right = _side(a)
    for t, name in ((values, "values"), (boundaries, "boundaries")):
        if not isinstance(t, torch.Tensor):
            raise Unsupported(f"{name} must be a tensor")
        if t.dtype not in DTYPES:
            raise Unsupported(f"{name} dtype {t.dtype} is not supported (bool and complex are not)")
    shape = packed_shape(values, "self") if values.dim() else ()
    bshape = static_shape(boundaries, "boundaries")
    if len(bshape) == 0:
        raise Unsupported("0-d boundaries are not supported")
    batched = len(bshape) > 1
    if batched and (overload == BUCKETIZE or shape[:-1] != bshape[:-1] or len(shape) != len(bshape)):
        raise Unsupported("N-d boundaries need values with the same leading dims (searchsorted only)")
    numel = math.prod(shape)
    rows = math.prod(bshape[:-1]) if batched else 1
    per_row = shape[-1] if batched else numel
    call = BucketizeCall(right, bool(a["out_int32"]), batched, rows, per_row, bshape[-1], shape,
                         torch.result_type(values, boundaries))
    return call, {"values": values, "boundaries": boundaries}


def remembered(problem: Problem) -> dict:
    """The keyword-only arguments a problem keeps (rewritten nodes and tests may leave them out)."""
    return {"right": problem.param("right"), "out_int32": problem.param("out_int32")}


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, t = describe(overload, args, kwargs)
    return Problem(
        family=family,
        op=str(overload),
        params=(("right", call.right), ("out_int32", call.out_int32), ("batched", call.batched),
                ("values_rank", t["values"].dim())),
        dims=(("rows", call.rows), ("per_row", call.per_row), ("length", call.length)),
        dtypes=(("values", dtype_name(t["values"].dtype)), ("boundaries", dtype_name(t["boundaries"].dtype))),
        contiguous=t["values"].is_contiguous() and t["boundaries"].is_contiguous(),
    )
