"""The interaction calls the family accepts, in normal form, and the Problem each describes.

pairwise_dots(features [B, F, D], first [P], second [P]) -> [B, P] and
pairwise_dots_backward(grad [B, P], features, first, second) -> [B, F, D] (torch_kevolve.patterns.ops).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ...patterns import ops  # noqa: F401  (registers the kevolve pattern ops)
from ..base import Unsupported, one_device
from ..dims import static_shape
from ..schema import bind_arguments, dtype_name, dtype_named

PAIRWISE_DOTS = torch.ops.kevolve.pairwise_dots.default
PAIRWISE_DOTS_BACKWARD = torch.ops.kevolve.pairwise_dots_backward.default
FEATURE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
INDEX_DTYPES = (torch.int32, torch.int64)


@dataclass(frozen=True)
class InteractionCall:
    """One call: forward or backward, features [batch, rows, dim], `pairs` index pairs, the features' dtype."""

    backward: bool
    batch: int
    rows: int
    dim: int
    pairs: int
    dtype: torch.dtype

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), dtype=dtype_name(self.dtype))

    @staticmethod
    def from_params(p: dict) -> "InteractionCall":
        return InteractionCall(**{**p, "dtype": dtype_named(p["dtype"])})


def describe(overload, args: Sequence, kwargs: dict) -> tuple[InteractionCall, dict]:
    """The InteractionCall and the call's tensors by name (features, first, second, and grad for the
    backward); Unsupported if not ours."""
    if overload not in (PAIRWISE_DOTS, PAIRWISE_DOTS_BACKWARD):
        raise Unsupported(f"{overload} is not an interaction of this family")
    a = bind_arguments(overload, args, kwargs)
    features, first, second = a["features"], a["first"], a["second"]
    if features.dim() != 3:
        raise Unsupported("features must be [batch, rows, dim]")
    batch, rows, dim = static_shape(features, "features")
    if features.dtype not in FEATURE_DTYPES:
        raise Unsupported(f"features dtype {features.dtype} is not fp32/fp16/bf16/fp64")
    if first.dim() != 1 or first.shape != second.shape:
        raise Unsupported("first and second must be 1-D index tensors of one length")
    if first.dtype not in INDEX_DTYPES or second.dtype != first.dtype:
        raise Unsupported(f"index dtypes {first.dtype}, {second.dtype} are not one of int32/int64")
    (pairs,) = static_shape(first, "first")
    tensors = {"features": features, "first": first, "second": second}
    backward = overload == PAIRWISE_DOTS_BACKWARD
    if backward:
        grad = a["grad"]
        if tuple(grad.shape) != (batch, pairs) or grad.dtype != features.dtype:
            raise Unsupported("grad must be [batch, pairs] in the features' dtype")
        tensors["grad"] = grad
    one_device(*tensors.values())
    return InteractionCall(backward, batch, rows, dim, pairs, features.dtype), tensors


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, t = describe(overload, args, kwargs)
    return Problem(
        family=family,
        op=str(overload),
        params=(),
        dims=(("batch", call.batch), ("rows", call.rows), ("dim", call.dim), ("pairs", call.pairs)),
        dtypes=(("features", dtype_name(call.dtype)), ("index", dtype_name(t["first"].dtype))),
        contiguous=t["features"].is_contiguous() and (not call.backward or t["grad"].is_contiguous()),
        exact_dims=frozenset({"rows", "dim", "pairs"}),
    )
