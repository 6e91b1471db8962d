"""The clamped bucket-id calls the family accepts: kevolve::bucketize_clamp_offset(values, boundaries, lengths,
offsets, right) = min(searchsorted(boundaries, values, right), lengths) + offsets, with batched searchsorted's
rules (calls.py) for values [rows, per_row] (any strides) and boundaries [rows, length], and int64 [rows, 1]
columns lengths and offsets."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import torch

from ...key import Problem
from ...patterns import ops  # noqa: F401  (registers the kevolve pattern ops)
from ..base import Unsupported
from ..schema import bind_arguments
from . import calls
from .calls import BucketizeCall

BUCKETIZE_CLAMP_OFFSET = torch.ops.kevolve.bucketize_clamp_offset.default


def _as_search(overload, args: Sequence, kwargs: dict) -> tuple[dict, tuple, dict]:
    """The call's arguments by name, and searchsorted's positional and keyword arguments for its search."""
    if overload != BUCKETIZE_CLAMP_OFFSET:
        raise Unsupported(f"{overload} is not a clamped bucketize of this family")
    a = bind_arguments(overload, args, kwargs)
    return a, (a["boundaries"], a["values"]), {"right": a["right"]}


def describe(overload, args: Sequence, kwargs: dict) -> tuple[BucketizeCall, dict]:
    """searchsorted's BucketizeCall (batched, int64 out) and the tensors by name (values, boundaries, lengths,
    offsets); Unsupported if not ours."""
    a, search_args, search_kwargs = _as_search(overload, args, kwargs)
    call, tensors = calls.describe(calls.SEARCHSORTED, search_args, search_kwargs)
    if not call.batched or len(call.out_shape) != 2:
        raise Unsupported("the clamped bucketize takes 2-D values and boundaries, one boundary row per value row")
    for name in ("lengths", "offsets"):
        t = a[name]
        if not (isinstance(t, torch.Tensor) and t.dtype == torch.int64 and tuple(t.shape) == (call.rows, 1)):
            raise Unsupported(f"{name} must be an int64 [rows, 1] column")
    return call, {**tensors, "lengths": a["lengths"], "offsets": a["offsets"]}


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    """Batched searchsorted's Problem for the same values and boundaries, named after the clamped op."""
    describe(overload, args, kwargs)
    _, search_args, search_kwargs = _as_search(overload, args, kwargs)
    return dataclasses.replace(calls.problem(family, calls.SEARCHSORTED, search_args, search_kwargs), op=str(overload))
