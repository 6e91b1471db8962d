"""The segment_reduce calls the family accepts, in normal form, and the Problem each describes.

Segments run along axis 0 of data [rows, *inner] (inner flattened): segment s holds rows
[offsets[s], offsets[s + 1]) (offsets given, or the running sum of lengths). Lengths and offsets are
trusted as with unsafe=True: a kernel never checks that they sum to `rows`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import Unsupported
from ..dims import packed_shape, wrap_dim
from ..schema import bind_arguments, dtype_name

aten = torch.ops.aten
FORWARD, BACKWARD = aten.segment_reduce.default, aten._segment_reduce_backward.default
REDUCES = ("sum", "mean", "max", "min")
DATA_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
INDEX_DTYPES = (torch.int32, torch.int64)


@dataclass(frozen=True)
class SegmentCall:
    """One call: direction, reduction, segments and data rows (each an int, or symbolic where it varies from call
    to call), data's trailing dims, whether segments come as lengths (else offsets), and the initial value (None: the
    reduction's identity)."""

    backward: bool
    reduce: str
    segments: int
    rows: int
    inner_shape: tuple[int, ...]
    by_lengths: bool
    initial: float | None

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), inner_shape=list(self.inner_shape))

    @staticmethod
    def from_params(p: dict) -> "SegmentCall":
        return SegmentCall(**{**p, "inner_shape": tuple(p["inner_shape"])})

    @property
    def inner(self) -> int:
        return math.prod(self.inner_shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        """[segments, *inner] forward, data's shape [rows, *inner] backward."""
        return (self.rows if self.backward else self.segments,) + self.inner_shape


def describe(overload, args: Sequence, kwargs: dict) -> tuple[SegmentCall, dict]:
    """The SegmentCall and the call's tensors by name (data, index, and grad and output backward);
    Unsupported if not ours."""
    if overload not in (FORWARD, BACKWARD):
        raise Unsupported(f"{overload} is not a segment reduction of this family")
    a = bind_arguments(overload, args, kwargs)
    data, reduce = a["data"], a["reduce"]
    if reduce not in REDUCES:
        raise Unsupported(f"reduce={reduce!r} is not supported (only {', '.join(REDUCES)})")
    if a.get("indices") is not None:
        raise Unsupported("indices are not supported (ATen neither)")
    if (a["lengths"] is None) == (a["offsets"] is None):
        raise Unsupported("give exactly one of lengths and offsets")
    index = a["lengths"] if a["lengths"] is not None else a["offsets"]
    shape = packed_shape(data, "data")
    if wrap_dim(a["axis"], len(shape)) != 0:
        raise Unsupported(f"only axis 0 of data of rank >= 1 is supported (axis={a['axis']}, rank {len(shape)})")
    if index.dim() != 1:
        raise Unsupported("lengths and offsets must be 1-D tensors (axis 0)")
    if index.dtype not in INDEX_DTYPES:
        raise Unsupported(f"lengths/offsets dtype {index.dtype} is not int32/int64")
    if data.dtype not in DATA_DTYPES:
        raise Unsupported(f"dtype {data.dtype} is not float32/float16/bfloat16")
    by_lengths = a["lengths"] is not None
    segments = index.shape[0] if by_lengths else index.shape[0] - 1
    if segments < 0:
        raise Unsupported("offsets must hold at least one entry")
    initial = None if a["initial"] is None else float(a["initial"])
    call = SegmentCall(overload == BACKWARD, reduce, segments, shape[0], tuple(shape[1:]), by_lengths, initial)
    tensors = {"data": data, "index": index}
    if call.backward:
        tensors.update(grad=a["grad"], output=a["output"])
        expected = (segments,) + tuple(shape[1:])
        if tuple(a["grad"].shape) != expected or tuple(a["output"].shape) != expected:
            raise Unsupported(f"grad and output must be {list(expected)}")
        if a["grad"].dtype != data.dtype or a["output"].dtype != data.dtype:
            raise Unsupported("grad, output and data must share a dtype")
    return call, tensors


def offsets_of(index: torch.Tensor, call: SegmentCall) -> torch.Tensor:
    """Offsets [segments + 1] of the call's segments (the running sum of lengths, or the offsets given)."""
    if not call.by_lengths:
        return index.contiguous()
    return torch.cat([index.new_zeros(1), index.cumsum(0, dtype=index.dtype)])


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, t = describe(overload, args, kwargs)
    return Problem(
        family=family,
        op=str(overload),
        params=(("reduce", call.reduce), ("by_lengths", call.by_lengths), ("initial", call.initial),
                ("inner_rank", len(call.inner_shape))),
        dims=(("segments", call.segments), ("rows", call.rows), ("inner", call.inner)),
        dtypes=(("data", dtype_name(t["data"].dtype)), ("index", dtype_name(t["index"].dtype))),
        contiguous=all(x.is_contiguous() for x in t.values()),
        exact_dims=frozenset({"inner"}),
    )
