"""The callables implementations build: an ATen overload's signature around a family's compute function."""
from __future__ import annotations

from typing import Callable, Sequence

from ..key import Problem
from .schema import overload_named


def overload_call(problem: Problem, describe: Callable, compute: Callable, results: Callable) -> Callable:
    """fn(*args, **kwargs) for the problem's overload: call, tensors = describe(overload, args, kwargs),
    then results(compute(tensors, call), call) is what the overload returns."""
    overload = overload_named(problem.op)

    def fn(*args, **kwargs):
        call, tensors = describe(overload, args, kwargs)
        return results(compute(tensors, call), call)

    return fn


def first_output(outputs: Sequence, call):
    """The one output of a single-output overload (a `results` for overload_call)."""
    return outputs[0]


def forward_or_masked(outputs: Sequence, call) -> tuple:
    """A forward's outputs as a tuple; a backward's wanted gradients (call.output_mask) in their
    places and None for the others, as ATen's norm backward returns them."""
    if not call.backward:
        return tuple(outputs)
    wanted = iter(outputs)
    return tuple(next(wanted) if m else None for m in call.output_mask)
