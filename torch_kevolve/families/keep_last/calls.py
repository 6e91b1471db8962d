"""The keep_last calls the family accepts: kevolve::keep_last(values [n], ends [segments], kept [segments],
offsets [segments + 1], total) with 1-D values of any dtype, ends, kept and offsets of one integer dtype (int32 /
int64), at least one segment and total >= 0. The values' count and total may vary from call to call (symbolic)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ...patterns import ops  # noqa: F401  (registers the kevolve pattern ops)
from ..base import Unsupported, one_device
from ..dims import packed_shape, static_shape
from ..schema import bind_arguments, dtype_name, dtype_named

KEEP_LAST = torch.ops.kevolve.keep_last.default
INDEX_DTYPES = (torch.int32, torch.int64)


@dataclass(frozen=True)
class KeepLastCall:
    """One call: `total` of `values` values of `value_dtype` kept from `segments` segments, indexed in
    `index_dtype` (values and total: ints, or symbolic where they vary from call to call)."""

    segments: int
    values: int
    total: int
    value_dtype: torch.dtype
    index_dtype: torch.dtype

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), value_dtype=dtype_name(self.value_dtype),
                    index_dtype=dtype_name(self.index_dtype))

    @staticmethod
    def from_params(p: dict) -> "KeepLastCall":
        return KeepLastCall(**{**p, "value_dtype": dtype_named(p["value_dtype"]),
                               "index_dtype": dtype_named(p["index_dtype"])})


def describe(overload, args: Sequence, kwargs: dict) -> tuple[KeepLastCall, dict]:
    """The KeepLastCall and the tensors by name (values, ends, kept, offsets); Unsupported if not ours."""
    if overload != KEEP_LAST:
        raise Unsupported(f"{overload} is not a keep_last of this family")
    a = bind_arguments(overload, args, kwargs)
    t = {name: a[name] for name in ("values", "ends", "kept", "offsets")}
    for name, tensor in t.items():
        if tensor.dim() != 1:
            raise Unsupported(f"{name} must be 1-D")
    index_dtype = t["offsets"].dtype
    if index_dtype not in INDEX_DTYPES or any(t[n].dtype != index_dtype for n in ("ends", "kept")):
        raise Unsupported(f"ends, kept and offsets must share one dtype of {INDEX_DTYPES}")
    (n,), (segments,) = packed_shape(t["values"], "values"), static_shape(t["ends"], "ends")
    if segments < 1 or static_shape(t["kept"], "kept") != (segments,) or static_shape(t["offsets"], "offsets") != (
            segments + 1,):
        raise Unsupported("needs at least one segment, with ends and kept one per segment and offsets one more")
    total = a["total"]
    if not isinstance(total, (int, torch.SymInt)) or (isinstance(total, int) and total < 0):
        raise Unsupported(f"total must be a size (a non-negative int), not {total!r}")
    one_device(*t.values())
    return KeepLastCall(segments, n, total, t["values"].dtype, index_dtype), t


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, t = describe(overload, args, kwargs)
    return Problem(
        family=family,
        op=str(overload),
        params=(),
        dims=(("segments", call.segments), ("values", call.values), ("total", call.total)),
        dtypes=(("values", dtype_name(call.value_dtype)), ("index", dtype_name(call.index_dtype))),
        contiguous=all(tensor.is_contiguous() for tensor in t.values()),
    )
