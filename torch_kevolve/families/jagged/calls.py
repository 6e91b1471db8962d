"""The jagged <-> padded-dense calls the family accepts, in normal form, and the Problem each describes.

One jagged dim: packed values [total, *inner] hold `batch` segments, segment b at rows
[offsets[b], offsets[b + 1]); the padded form is [batch, max_length, *inner]. Trailing dims are
flattened to `inner` (D).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import Unsupported
from ..dims import packed_shape
from ..schema import bind_arguments, dtype_name

aten = torch.ops.aten
TO_PADDED, TO_JAGGED = aten._jagged_to_padded_dense_forward.default, aten._padded_dense_to_jagged_forward.default
VALUE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
OFFSET_DTYPES = (torch.int32, torch.int64)


@dataclass(frozen=True)
class JaggedCall:
    """One call: direction, segments and packed rows (each an int, or symbolic where it varies from call to call),
    padded length, the trailing dims and the padding value (to_padded only)."""

    to_padded: bool
    batch: int
    max_length: int
    total: int
    inner_shape: tuple[int, ...]
    padding_value: float

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), inner_shape=list(self.inner_shape))

    @staticmethod
    def from_params(p: dict) -> "JaggedCall":
        return JaggedCall(**{**p, "inner_shape": tuple(p["inner_shape"])})

    @property
    def inner(self) -> int:
        return math.prod(self.inner_shape)

    @property
    def out_shape(self) -> tuple:
        """[batch, max_length, *inner] to_padded, [total, *inner] to_jagged."""
        return ((self.batch, self.max_length) if self.to_padded else (self.total,)) + self.inner_shape


def _offsets(offsets_list) -> torch.Tensor:
    if len(offsets_list) != 1:
        raise Unsupported(f"only one jagged dim (one offsets tensor) is supported, got {len(offsets_list)}")
    (offsets,) = offsets_list
    if offsets.dim() != 1 or offsets.shape[0] < 1:
        raise Unsupported("offsets must be a 1-D tensor of batch + 1 entries")
    if offsets.dtype not in OFFSET_DTYPES:
        raise Unsupported(f"offsets dtype {offsets.dtype} is not int32/int64")
    return offsets


def describe(overload, args: Sequence, kwargs: dict) -> tuple[JaggedCall, dict]:
    """The JaggedCall and the call's tensors by name (source, offsets); Unsupported if not ours."""
    if overload not in (TO_PADDED, TO_JAGGED):
        raise Unsupported(f"{overload} is not a jagged conversion of this family")
    a = bind_arguments(overload, args, kwargs)
    offsets = _offsets(a["offsets"])
    batch = offsets.shape[0] - 1
    if overload == TO_PADDED:
        source = a["values"]
        shape = packed_shape(source, "values")
        max_lengths = a["max_lengths"]
        if len(max_lengths) != 1 or not isinstance(max_lengths[0], int):
            raise Unsupported("max_lengths must be one static length")
        call = JaggedCall(True, batch, max_lengths[0], shape[0], shape[1:], float(a["padding_value"]))
    else:
        source, total = a["dense"], a["total_L"]
        shape = packed_shape(source, "dense")
        if not isinstance(total, (int, torch.SymInt)):
            raise Unsupported(f"total_L must be a length, not {total!r}")
        if len(shape) < 2 or shape[0] != batch:
            raise Unsupported(f"dense must be [batch={batch}, max_length, *inner], got {list(shape)}")
        call = JaggedCall(False, batch, shape[1], total, shape[2:], 0.0)
    if source.dtype not in VALUE_DTYPES:
        raise Unsupported(f"dtype {source.dtype} is not float32/float16/bfloat16")
    return call, {"source": source, "offsets": offsets}


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, t = describe(overload, args, kwargs)
    params = (("inner_rank", len(call.out_shape) - (2 if call.to_padded else 1)),)
    if call.to_padded:
        params += (("padding_value", call.padding_value),)
    return Problem(
        family=family,
        op=str(overload),
        params=params,
        dims=(("batch", call.batch), ("max_length", call.max_length), ("total", call.total), ("inner", call.inner)),
        dtypes=(("values", dtype_name(t["source"].dtype)), ("offsets", dtype_name(t["offsets"].dtype))),
        contiguous=t["source"].is_contiguous(),
        exact_dims=frozenset({"inner"}),
    )
