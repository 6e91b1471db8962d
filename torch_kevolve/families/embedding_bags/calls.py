"""The batched embedding-bag calls the family accepts, and the Problem each describes.

embedding_bags(weights[T], indices[T], offsets[T], mode, include_last_offset) -> pooled[T] and
embedding_bags_backward(grads[T], indices[T], offsets[T], num_weights[T], mode, include_last_offset) -> [T]
(torch_kevolve.patterns.ops). The problem keeps the totals over the tables (rows, indices, bags) and their
number; inputs for it split the totals evenly.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ...key import Problem
from ...patterns import ops  # noqa: F401  (registers the kevolve pattern ops)
from ..base import Unsupported
from ..schema import bind_arguments, dtype_name

FORWARD = torch.ops.kevolve.embedding_bags.default
BACKWARD = torch.ops.kevolve.embedding_bags_backward.default
VALUE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
INDEX_DTYPES = (torch.int32, torch.int64)


def _one(tensors: Sequence[torch.Tensor], what: str, attribute: str):
    values = {getattr(t, attribute) for t in tensors}
    if len(values) != 1:
        raise Unsupported(f"the tables' {what} differ in {attribute}: {sorted(map(str, values))}")
    return values.pop()


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    """The batched call's problem; Unsupported (with the reason) outside sum/mean of 1-D bags over 2-D tables
    of one dtype, width and device."""
    if overload not in (FORWARD, BACKWARD):
        raise Unsupported(f"{overload} is not a batched embedding bag")
    a = bind_arguments(overload, args, kwargs)
    backward = overload == BACKWARD
    values = a["grads"] if backward else a["weights"]
    indices, offsets = a["indices"], a["offsets"]
    if not values or not (len(values) == len(indices) == len(offsets)):
        raise Unsupported("one weight (grad), indices and offsets per table, at least one table")
    if a["mode"] not in (0, 1):
        raise Unsupported(f"mode {a['mode']} is not sum (0) or mean (1)")
    if any(v.dim() != 2 for v in values) or any(t.dim() != 1 for t in (*indices, *offsets)):
        raise Unsupported("tables (grads) must be 2-D, indices and offsets 1-D")
    dtype, index_dtype, offsets_dtype = (_one(values, "values", "dtype"), _one(indices, "indices", "dtype"),
                                         _one(offsets, "offsets", "dtype"))
    if dtype not in VALUE_DTYPES or index_dtype not in INDEX_DTYPES or offsets_dtype not in INDEX_DTYPES:
        raise Unsupported(f"dtypes {dtype}, {index_dtype}, {offsets_dtype} are not fp32/fp16/bf16 with int32/int64")
    _one([*values, *indices, *offsets], "tensors", "device")
    widths = {v.shape[1] for v in values}
    if len(widths) != 1:
        raise Unsupported(f"the tables differ in width: {sorted(widths)}")
    dim = widths.pop()
    ilo = bool(a["include_last_offset"])
    rows = list(a["num_weights"]) if backward else [w.shape[0] for w in values]
    bags = [v.shape[0] for v in values] if backward else [o.shape[0] - ilo for o in offsets]
    return Problem(
        family=family,
        op=str(overload),
        params=(("mode", a["mode"]), ("include_last_offset", ilo), ("tables", len(values))),
        dims=(("rows", sum(rows)), ("dim", int(dim)), ("indices", sum(i.shape[0] for i in indices)),
              ("bags", sum(bags))),
        dtypes=(("values", dtype_name(dtype)), ("index", dtype_name(index_dtype)), ("offsets", dtype_name(offsets_dtype))),
        contiguous=all(v.is_contiguous() for v in values),
        exact_dims=frozenset({"dim"}),
    )


def is_backward(problem: Problem) -> bool:
    return problem.op == str(BACKWARD)


def split(total: int, parts: int) -> list[int]:
    """`total` in `parts` near-equal shares (the first ones one larger)."""
    return [total // parts + (t < total % parts) for t in range(parts)]
