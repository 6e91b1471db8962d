"""Reductions as pairwise folds of elementwise PyTorch ops, which Inductor compiles for any device.

The rows view is folded in half until one column is left (`halving`), or, for sums, multiplied by a
ones vector (`matmul`). Same RowProgram, same accumulators as the Triton kernel.
"""
from __future__ import annotations

import math

import torch

from ..dims import rows_view
from .spec import ReductionCall, accumulator
from .triton_kernel import divisor

FOLDS = ("halving", "matmul")
ACCUMULATORS = {"fp32": torch.float32, "fp64": torch.float64, "int64": torch.int64}


def _transform(v: torch.Tensor, order: float, name: str) -> torch.Tensor:
    ops = {
        "neg": lambda: -v, "abs": v.abs, "neg_abs": lambda: -v.abs(), "square": lambda: v * v,
        "abs_pow": lambda: v.abs().pow(order), "nonzero": lambda: (v != 0).to(v.dtype),
        "is_zero": lambda: (v == 0).to(v.dtype), "exp": v.exp, "none": lambda: v,
        "nan_to_zero": lambda: v.nan_to_num(0.0, posinf=math.inf, neginf=-math.inf),
    }
    return ops[name]()


def _finish(acc: torch.Tensor, center: torch.Tensor, order: float, div: float, name: str) -> torch.Tensor:
    ops = {
        "neg": lambda: -acc, "divide": lambda: acc / div, "sqrt_divide": lambda: (acc / div).sqrt(),
        "sqrt": acc.sqrt, "root": lambda: acc.pow(1.0 / order), "log_add_center": lambda: acc.log() + center,
        "positive": lambda: acc > 0, "not": lambda: acc == 0, "none": lambda: acc,
    }
    return ops[name]()


def _pair(values: torch.Tensor, index: torch.Tensor, combine: str):
    """One fold: column j of the result combines columns 2j and 2j+1 (an odd last column stays)."""
    if values.shape[1] % 2:
        pad = {"sum": 0, "prod": 1}.get(combine)
        last = values[:, -1:] if pad is None else torch.full_like(values[:, -1:], pad)
        values, index = torch.cat([values, last], 1), torch.cat([index, index[:, -1:]], 1)
    left, right = values[:, 0::2], values[:, 1::2]
    if combine == "sum":
        return left + right, index[:, 0::2]
    if combine == "prod":
        return left * right, index[:, 0::2]
    # max/argmax: NaN wins, and on ties the left (earlier) column.
    take_left = (left >= right) | left.isnan() | (left == right)
    take_left = take_left & ~(right.isnan() & ~left.isnan())
    return torch.where(take_left, left, right), torch.where(take_left, index[:, 0::2], index[:, 1::2])


def _fold(values: torch.Tensor, combine: str, fold: str):
    """(combined values, index of the winning column) of each row."""
    rows, length = values.shape
    if length == 0:
        identity = 1 if combine == "prod" else 0
        return values.new_full((rows,), identity), values.new_zeros((rows,), dtype=torch.int64)
    if fold == "matmul":
        return values @ values.new_ones(length), None
    index = torch.arange(length, device=values.device).expand(rows, length)
    while values.shape[1] > 1:
        values, index = _pair(values, index, combine)
    return values[:, 0], index[:, 0]


def reduce(x: torch.Tensor, call: ReductionCall, fold: str) -> list[torch.Tensor]:
    """The call's outputs, each row folded by `fold`."""
    matrix = rows_view(x, call.dims).to(ACCUMULATORS[accumulator(call, x.dtype)])
    rows, length = matrix.shape
    program = call.program
    center = matrix.new_zeros(rows)
    if program.center == "mean":
        center = _fold(matrix, "sum", fold)[0] / length
    elif program.center == "max":
        center = _fold(matrix, "max", "halving")[0] if length else center - float("inf")
        center = torch.where(center.abs() == float("inf"), 0.0, center)
    values = _transform(matrix - center[:, None], call.order, program.transform)
    acc, index = _fold(values, program.combine, fold)
    if program.combine == "argmax":
        result = index
    else:
        result = _finish(acc, center, call.order, divisor(call, length), program.finish)
    shape = call.out_shape(x.shape)
    outs = [result.to(call.out_dtype).reshape(shape)]
    if call.companion == "mean":
        outs.append(center.to(x.dtype).reshape(shape))
    if call.companion == "values":
        values = _finish(acc, center, call.order, 0.0, program.finish)
        outs.insert(0, values.to(x.dtype).reshape(shape))
    return outs
