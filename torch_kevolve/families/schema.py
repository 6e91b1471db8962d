"""Binding of an ATen call's positional and keyword arguments to the overload's argument names."""
from __future__ import annotations

from typing import Sequence

import torch

from ..patterns import is_pattern_op, meaning


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


def overload_named(op: str) -> torch._ops.OpOverload:
    """The overload `str(overload)` names, e.g. 'aten.sum.dim_IntList'."""
    namespace, name, overload = op.split(".")
    return getattr(getattr(getattr(torch.ops, namespace), name), overload)


def with_keyword_only(overload: torch._ops.OpOverload, kwargs: dict, remembered: dict) -> dict:
    """`kwargs` completed by the `remembered` values of the overload's keyword-only arguments.

    A rewritten graph node passes positional arguments only; a family's Problem remembers the rest.
    """
    names = {a.name for a in overload._schema.arguments if a.kwarg_only}
    return {**{k: v for k, v in remembered.items() if k in names}, **kwargs}


_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32,
           torch.int64, torch.uint8, torch.bool, torch.complex64, torch.complex128)


def dtype_named(name: str) -> torch.dtype:
    """The dtype `dtype_name` names (KeyError for any other name)."""
    return _DTYPES_BY_NAME[name]


def dtype_name(dtype: torch.dtype) -> str:
    """'float32' for torch.float32: how Problems and JSON params name dtypes (getattr(torch, name) reads it back)."""
    return str(dtype).removeprefix("torch.")


_DTYPES_BY_NAME = {dtype_name(d): d for d in _DTYPES}  # read back by every launch of a custom op's kernel


def call_as_compiled(overload: torch._ops.OpOverload, values: Sequence):
    """call_in_schema_order, but a pattern op runs as its plain-ATen meaning: what a torch.compile'd reference
    calls, so that Inductor compiles the pattern as it would in the user's graph (a custom op is opaque to it)."""
    if is_pattern_op(overload):
        return meaning(overload)(*values)
    return call_in_schema_order(overload, values)
