"""The factorization-machine calls the family accepts, in normal form, and the Problem each describes.

fm_interaction(features [B, N, D], projection [N, K] or [B, N, K]) -> [B, N, K] and
fm_interaction_backward(grad [B, N, K], features, projection) -> (grad_features, grad_projection)
(torch_kevolve.patterns.ops). A [N, K] projection is shared by the batch.
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

FM_INTERACTION = torch.ops.kevolve.fm_interaction.default
FM_INTERACTION_BACKWARD = torch.ops.kevolve.fm_interaction_backward.default
DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


@dataclass(frozen=True)
class FMCall:
    """One call: forward or backward, features [batch, rows, dim], projection [rows, k] (shared) or
    [batch, rows, k], one dtype."""

    backward: bool
    batch: int
    rows: int
    dim: int
    k: int
    shared: bool
    dtype: torch.dtype

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), dtype=dtype_name(self.dtype))

    @staticmethod
    def from_params(p: dict) -> "FMCall":
        return FMCall(**{**p, "dtype": dtype_named(p["dtype"])})


def describe(overload, args: Sequence, kwargs: dict) -> tuple[FMCall, dict]:
    """The FMCall and the call's tensors by name (features, projection, and grad for the backward);
    Unsupported if not ours."""
    if overload not in (FM_INTERACTION, FM_INTERACTION_BACKWARD):
        raise Unsupported(f"{overload} is not a factorization-machine interaction")
    a = bind_arguments(overload, args, kwargs)
    features, projection = a["features"], a["projection"]
    if features.dim() != 3:
        raise Unsupported("features must be [batch, rows, dim]")
    batch, rows, dim = static_shape(features, "features")
    shape = static_shape(projection, "projection")
    if shape[:-1] not in ((rows,), (batch, rows)):
        raise Unsupported("projection must be [rows, k] or [batch, rows, k]")
    if features.dtype not in DTYPES or projection.dtype != features.dtype:
        raise Unsupported(f"dtypes {features.dtype}, {projection.dtype} are not one of fp32/fp16/bf16/fp64")
    tensors = {"features": features, "projection": projection}
    call = FMCall(overload == FM_INTERACTION_BACKWARD, batch, rows, dim, shape[-1], projection.dim() == 2,
                  features.dtype)
    if call.backward:
        grad = a["grad"]
        if tuple(grad.shape) != (batch, rows, call.k) or grad.dtype != features.dtype:
            raise Unsupported("grad must be [batch, rows, k] in the features' dtype")
        tensors["grad"] = grad
    one_device(*tensors.values())
    return call, tensors


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, tensors = describe(overload, args, kwargs)
    return Problem(
        family=family,
        op=str(overload),
        params=(("shared", call.shared),),
        dims=(("batch", call.batch), ("rows", call.rows), ("dim", call.dim), ("k", call.k)),
        dtypes=(("features", dtype_name(call.dtype)),),
        contiguous=all(t.is_contiguous() for t in tensors.values()),
        exact_dims=frozenset({"rows", "dim", "k"}),
    )
