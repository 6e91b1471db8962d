"""Binding of an ATen call's positional and keyword arguments to the overload's argument names."""
from __future__ import annotations

from typing import Sequence

import torch


def bind_arguments(overload: torch._ops.OpOverload, args: Sequence, kwargs: dict) -> dict:
    """Every argument of `overload`'s schema by name: given positionally, by keyword, or its default."""
    bound = {}
    for position, argument in enumerate(overload._schema.arguments):
        if position < len(args):
            bound[argument.name] = args[position]
        elif argument.name in kwargs:
            bound[argument.name] = kwargs[argument.name]
        elif argument.has_default_value():
            bound[argument.name] = argument.default_value
        else:
            raise TypeError(f"{overload}: missing argument {argument.name!r}")
    return bound


def schema_values(overload: torch._ops.OpOverload, args: Sequence, kwargs: dict) -> list:
    """Every argument of `overload`'s schema in schema order, kwarg-only ones included."""
    bound = bind_arguments(overload, args, kwargs)
    return [bound[a.name] for a in overload._schema.arguments]


def call_in_schema_order(overload: torch._ops.OpOverload, values: Sequence):
    """Call `overload` on every schema argument given in schema order (kwarg-only ones by keyword)."""
    arguments = overload._schema.arguments
    args = [v for v, a in zip(values, arguments) if not a.kwarg_only]
    kwargs = {a.name: v for v, a in zip(values, arguments) if a.kwarg_only}
    return overload(*args, **kwargs)
