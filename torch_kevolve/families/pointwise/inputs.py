"""Random inputs of the pointwise family: tensors by distribution, and example calls per overload."""
from __future__ import annotations

import itertools
from typing import Iterator

import torch

from .table import ALWAYS_BOOL, BOOL, FLOAT, INT_TO_FLOAT, INTEGRAL, PointwiseOp

# Scalar arguments of the example calls, by schema name (others take the schema default).
EXAMPLE_SCALARS = {
    "other": 0.75, "alpha": 2, "exponent": 2.5, "negative_slope": 0.1, "min": -0.5, "max": 0.5,
    "min_val": -0.5, "max_val": 0.5, "value": 0.25, "threshold": 0.5, "beta": 1.5, "weight": 0.3,
    "approximate": "tanh", "self": 1.5, "scale": 1.25, "input_scale": 0.75,
}
EXAMPLE_INT_SCALARS = {"other": 3, "alpha": 2, "min": -2, "max": 2, "value": 5, "threshold": 1, "self": 3}
EXAMPLE_SHAPE = (33, 17)


def random_tensor(shape, dtype: torch.dtype, contiguous: bool, dist: str, g: torch.Generator) -> torch.Tensor:
    """A CPU tensor of `shape` and `dtype` drawn from `dist`; strided (transposed or every other
    element) unless `contiguous`."""
    shape = tuple(shape)
    if contiguous or not shape:
        layout_shape = shape
    elif len(shape) == 1:
        layout_shape = (shape[0] * 2,)
    else:
        layout_shape = shape[:-2] + (shape[-1], shape[-2])
    if dtype == torch.bool:
        t = torch.rand(layout_shape, generator=g) > 0.5
    elif not dtype.is_floating_point:
        low = 0 if dtype == torch.uint8 else -8
        t = torch.randint(low, 9, layout_shape, generator=g, dtype=dtype)
    elif dist == "uniform":
        t = (torch.rand(layout_shape, generator=g) * 2 - 1).to(dtype)
    elif dist == "large":
        t = (torch.randn(layout_shape, generator=g) * 100).to(dtype)
    elif dist == "edge":
        specials = torch.tensor([0.0, -0.0, 1.0, -1.0, float("inf"), float("-inf"), float("nan"), 1e-30])
        t = specials[torch.randint(0, len(specials), layout_shape, generator=g)].to(dtype)
    else:
        t = torch.randn(layout_shape, generator=g).to(dtype)
    if contiguous or not shape:
        return t
    return t[::2] if len(shape) == 1 else t.transpose(-1, -2)


def _example_dtypes(op: PointwiseOp) -> tuple[torch.dtype, ...]:
    if op.domain == INTEGRAL:
        return (torch.int32, torch.bool)
    if op.domain == FLOAT:
        return (torch.float32, torch.bfloat16)
    if op.promotion == BOOL:
        return (torch.float32, torch.bool)
    return (torch.float32, torch.float16, torch.int64)


def _argument(argument, name: str, shape, dtype: torch.dtype, op: PointwiseOp, g: torch.Generator, contiguous: bool):
    kind = argument.type.kind()
    if kind == "OptionalType":
        kind = argument.type.getElementType().kind()
    if kind == "TensorType":
        if name in op.masks:
            return random_tensor(shape, torch.bool, contiguous, "normal", g)
        if name == "value":  # masked_fill.Tensor takes a 0-d value
            return random_tensor((), dtype, True, "normal", g)
        return random_tensor(shape, dtype, contiguous, "normal", g)
    if name in ("is_result", "self_is_result"):
        return False
    floating = dtype.is_floating_point
    table = EXAMPLE_SCALARS if floating else EXAMPLE_INT_SCALARS
    if name in table and (kind != "StringType" or name == "approximate"):
        value = table[name]
        return value if dtype != torch.bool or kind == "StringType" else True
    if argument.has_default_value():
        return argument.default_value
    raise AssertionError(f"no example value for {name} ({kind})")


def example_arguments(overload, op: PointwiseOp, shape: tuple[int, int] = EXAMPLE_SHAPE) -> Iterator[tuple]:
    """Example argument lists of `overload` (schema order) for each example dtype: all tensors of
    `shape` contiguous, all strided, and the first of `shape` with the others broadcast rows of
    shape[-1:]; the out destination shaped like the result. Drawn one call at a time, as they are asked for."""
    schema = overload._schema.arguments
    layouts = ((True, False), (False, False), (True, True))
    for index, (dtype, (contiguous, broadcast)) in enumerate(itertools.product(_example_dtypes(op), layouts)):
        g = torch.Generator().manual_seed(index)
        args = []
        for position, argument in enumerate(schema):
            name = argument.name
            written = argument.alias_info is not None and argument.alias_info.is_write
            if written and name != "self":
                args.append(None)
                continue
            operand_shape = shape[-1:] if broadcast and position > 0 else shape
            args.append(_argument(argument, name, operand_shape, dtype, op, g, contiguous))
        yield tuple(_with_destination(overload, op, args))


def _with_destination(overload, op: PointwiseOp, args: list) -> list:
    """Fill the out argument with a tensor shaped like the result, of the result's dtype."""
    for position, argument in enumerate(overload._schema.arguments):
        if argument.alias_info is not None and argument.alias_info.is_write and argument.name != "self":
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            promoting = [a for a, s in zip(args, overload._schema.arguments)
                         if s.name in op.promoting_operands() and isinstance(a, torch.Tensor)]
            dtype = (promoting or tensors)[0].dtype
            if op.promotion in (ALWAYS_BOOL, BOOL):
                dtype = torch.bool
            elif op.promotion == INT_TO_FLOAT and not dtype.is_floating_point:
                dtype = torch.float32
            args[position] = torch.empty(torch.broadcast_shapes(*(t.shape for t in tensors)), dtype=dtype)
    return args
