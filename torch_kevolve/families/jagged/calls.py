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
from ..dims import static_shape
from ..schema import bind_arguments, dtype_name

aten = torch.ops.aten
TO_PADDED, TO_JAGGED = aten._jagged_to_padded_dense_forward.default, aten._padded_dense_to_jagged_forward.default
VALUE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
OFFSET_DTYPES = (torch.int32, torch.int64)


@dataclass(frozen=True)
class JaggedCall:
    """One call: direction, segments, padded length, packed rows, flattened inner size, output shape and
    the padding value (to_padded only)."""

    to_padded: bool
    batch: int
    max_length: int
    total: int
    inner: int
    out_shape: tuple[int, ...]
    padding_value: float

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), out_shape=list(self.out_shape))

    @staticmethod
    def from_params(p: dict) -> "JaggedCall":
        return JaggedCall(**{**p, "out_shape": tuple(p["out_shape"])})


def _offsets(offsets_list) -> torch.Tensor:
    if len(offsets_list) != 1:
        raise Unsupported(f"only one jagged dim (one offsets tensor) is supported, got {len(offsets_list)}")
    (offsets,) = offsets_list
    if offsets.dim() != 1 or not isinstance(offsets.shape[0], int) or offsets.shape[0] < 1:
        raise Unsupported("offsets must be a static 1-D tensor of batch + 1 entries")
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
        shape = static_shape(source, "values")
        max_lengths = a["max_lengths"]
        if len(max_lengths) != 1 or not isinstance(max_lengths[0], int):
            raise Unsupported("max_lengths must be one static length")
        if not shape:
            raise Unsupported("values must have a packed dim")
        (max_length,), total, inner_shape = max_lengths, shape[0], shape[1:]
        out_shape = (batch, max_length) + inner_shape
        call = JaggedCall(True, batch, max_length, total, math.prod(inner_shape), out_shape, float(a["padding_value"]))
    else:
        source, total = a["dense"], a["total_L"]
        shape = static_shape(source, "dense")
        if not isinstance(total, int):
            raise Unsupported("total_L must be given as a static length")
        if len(shape) < 2 or shape[0] != batch:
            raise Unsupported(f"dense must be [batch={batch}, max_length, *inner], got {list(shape)}")
        inner_shape = shape[2:]
        call = JaggedCall(False, batch, shape[1], total, math.prod(inner_shape), (total,) + inner_shape, 0.0)
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
