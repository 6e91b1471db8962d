"""The pointwise family: elementwise ATen overloads generated from the operator table."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import KernelFamily, Unsupported
from ..schema import call_in_schema_order, schema_values
from .calls import resolve_call
from .implementations import TRITON
from .inputs import example_arguments, random_tensor
from .overloads import OP_OF_OVERLOAD, resolve


def _describe(value) -> tuple:
    """A schema argument as problem data: tensors by shape, dtype and contiguity, the rest by value."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), str(value.dtype).removeprefix("torch."), value.is_contiguous())
    return ("value", value)


@dataclass
class PointwiseFamily(KernelFamily):
    """Unary, binary and ternary elementwise overloads with ATen's promotion, broadcasting, 0-d
    tensors, Python scalars, any strides, and in-place / out variants (see table.OPS).

    There is no decomposition implementation: written in PyTorch ops, an elementwise op is that op
    itself, which Inductor already lowers; only the Triton kernels are candidates.
    """

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        call = resolve_call(overload, args, kwargs)
        arguments = tuple(_describe(v) for v in schema_values(overload, args, kwargs))
        tensors = [a for a in arguments if a[0] == "tensor"]
        return Problem(
            family=self.name,
            op=str(overload),
            params=(("arguments", arguments),),
            dims=(("numel", math.prod(call.shape)),),
            dtypes=(("compute", str(call.compute).removeprefix("torch.")), ("output", str(call.dtype).removeprefix("torch."))),
            contiguous=all(t[3] for t in tensors),
        )

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        g = torch.Generator().manual_seed(seed)
        args = []
        for argument in problem.param("arguments"):
            if argument[0] == "tensor":
                _, shape, dtype, contiguous = argument
                args.append(random_tensor(shape, getattr(torch, dtype), contiguous, dist, g).to(device))
            else:
                args.append(argument[1])
        return tuple(args)

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        """The overload itself on CPU copies of the arguments, floating tensors in float64."""
        cpu = [a.detach().to("cpu", torch.float64 if a.is_floating_point() else a.dtype, copy=True)
               if isinstance(a, torch.Tensor) else a for a in args]
        return (call_in_schema_order(resolve(problem.op.removeprefix("aten.")), cpu),)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return (0,)

    def bytes_moved(self, problem: Problem) -> int:
        arguments = problem.param("arguments")
        total = sum(math.prod(a[1]) * torch.empty(0, dtype=getattr(torch, a[2])).element_size()
                    for a in arguments if a[0] == "tensor")
        written = problem.dim("numel") * torch.empty(0, dtype=problem.dtype("output")).element_size()
        return total + written

    def example_problems(self, overload) -> tuple[Problem, ...]:
        """Problems of the example calls of `overload` that the family accepts."""
        problems = []
        for args in example_arguments(overload, OP_OF_OVERLOAD[overload]):
            try:
                problems.append(self.problem(overload, args, {}))
            except Unsupported:
                continue
        return tuple(problems)


POINTWISE = PointwiseFamily(
    name="pointwise",
    version="1",
    overloads=tuple(OP_OF_OVERLOAD),
    implementations=(TRITON,),
)
