"""Calls whose sizes may vary from batch to batch (symbolic sizes under dynamic shapes): described without a guard,
and launched through ops that carry those sizes.

A kernel_call op (the CPU path: Triton's interpreter, opaque to Inductor) takes its call as one JSON text, a
constant of the traced graph, which cannot hold a symbolic size. The sizes (and shapes) named here, where symbolic,
travel instead as the shapes of empty [size, 0] (or [*shape, 0]) tensors after the call's tensors; the op and its
fake read them back, so a traced graph computes them at run time. On GPUs the launcher is called with the call
itself, as kernel_call does, unless the op is opaque (opaque_call): then every device goes through the op.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import torch
import torch.utils._pytree as pytree

from .custom_call import kernel_call
from .opaque_call import _params as constant_params
from .symbolic_sizes import is_symbolic, stand_ins


def sized_kernel_call(name: str, tensor_names: Sequence[str], sizes: Sequence[str], call_from_params: Callable,
                      run: Callable, allocate: Callable, shapes: Sequence[str] = ()) -> Callable:
    """`named_kernel_call(name, tensor_names, call_from_params, run, allocate)` whose call (a dataclass) has fields
    `sizes` (ints of `call.params()`) and `shapes` (tuples of ints) that may be symbolic; returns compute(tensors by
    name, call, genome) -> outputs. Registered with `unwrapped(run)` (opaque_call), the op can be called on every
    device through `opaque_sized_compute`."""
    count = len(tensor_names)

    def restored(tensors, params: dict) -> tuple[dict, object]:
        symbolic = [field for field in (*sizes, *shapes) if field not in params["call"]]
        carried = {field: _carried_value(carrier, field in shapes)
                   for field, carrier in zip(symbolic, tensors[count:])}
        return dict(zip(tensor_names, tensors[:count])), call_from_params({**params["call"], **carried})

    def run_listed(tensors, params: dict):
        named, call = restored(tensors, params)
        return run(named, call, params["genome"])

    def allocate_listed(tensors, params: dict):
        return allocate(*restored(tensors, params))

    call_op = kernel_call(name, run_listed, allocate_listed)

    def compute(tensors: dict, call, genome: dict) -> list[torch.Tensor]:
        listed = [tensors.get(n) for n in tensor_names]
        device = next(t.device for t in listed if t is not None)
        if device.type != "cpu":
            return run(dict(zip(tensor_names, listed)), call, genome)
        fields, carriers = _carried(call, (*sizes, *shapes), device)
        return call_op([*listed, *carriers], {"call": fields, "genome": genome})

    return compute


def opaque_sized_compute(op, tensor_names: Sequence[str], sizes: Sequence[str]) -> Callable:
    """compute(tensors by name, call, genome) -> outputs through `op`, a `sized_kernel_call` op registered with
    `unwrapped(run)`, on every device (opaque_call's reasons)."""

    def compute(tensors: dict, call, genome: dict) -> list[torch.Tensor]:
        listed = [tensors.get(n) for n in tensor_names]
        fields, carriers = _carried(call, sizes, next(t.device for t in listed if t is not None))
        return op([*listed, *carriers], constant_params(fields, genome))

    return compute


def _carried(call, fields: Sequence[str], device: torch.device) -> tuple[dict, list[torch.Tensor]]:
    """`call.params()` less its `fields` (ints or tuples of ints) that are symbolic, and those as the shapes of
    empty tensors: [*field, 0] (a tuple) or [field, 0] (an int)."""
    symbolic = [f for f in fields if is_symbolic([getattr(call, f)])]
    placeholder = dataclasses.replace(call, **{f: () if isinstance(getattr(call, f), tuple) else 0 for f in symbolic})
    params = placeholder.params()
    for f in symbolic:
        del params[f]
    shapes = [tuple(value) if isinstance(value, tuple) else (value,) for value in (getattr(call, f) for f in symbolic)]
    return params, [torch.empty(*shape, 0, device=device) for shape in shapes]


def _carried_value(carrier: torch.Tensor, is_shape: bool):
    """The int (or, `is_shape`, the tuple of ints) that `carrier` carries (_carried)."""
    return tuple(carrier.shape[:-1]) if is_shape else carrier.shape[0]


def sized_describe(describe: Callable, sizes_of: Callable[[dict], dict]) -> Callable:
    """`describe(overload, args, kwargs) -> (call, tensors by name)` for calls whose sizes may be symbolic: such a
    call is described on static stand-ins of its values (at their hints: its checks add no guard), and its call's
    fields `sizes_of(tensors)` are then read from its own tensors, which it returns."""

    def describe_sized(overload, args: Sequence, kwargs: dict):
        values = [list(args), kwargs]
        if not is_symbolic(values):
            return describe(overload, args, kwargs)
        stand_in_args, stand_in_kwargs = stand_ins(values)
        call, stand_in_tensors = describe(overload, stand_in_args, stand_in_kwargs)
        leaves = zip(pytree.tree_leaves([stand_in_args, stand_in_kwargs]), pytree.tree_leaves(values))
        own = {id(stand_in): value for stand_in, value in leaves}
        tensors = {name: own[id(t)] for name, t in stand_in_tensors.items()}
        return dataclasses.replace(call, **sizes_of(tensors)), tensors

    return describe_sized
