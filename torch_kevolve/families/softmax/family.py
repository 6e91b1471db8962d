"""The softmax family: problems, inputs, float64 references and rooflines of ATen's (log-)softmax."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from .. import row_examples
from ..base import KernelFamily
from ..schema import overload_named
from ..tensor_inputs import generator, random_tensor
from . import calls
from .implementations import DECOMPOSITION, TRITON


@dataclass
class SoftmaxFamily(KernelFamily):
    """`_softmax`, `_log_softmax`, their backward and `_safe_softmax` along any dim; rows of -inf give
    NaN as in ATen (0 for `_safe_softmax`)."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return calls.problem(self.name, overload, args, kwargs)

    def example_problems(self, overload) -> tuple[Problem, ...]:
        return row_examples.example_problems(self, overload)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """Rows along the last dim ([rows, row_length]) or the first ([row_length, rows]), transposed
        when strided. Backward: a random gradient and the forward's output of random inputs."""
        overload = overload_named(problem.op)
        rows, length = problem.dim("rows"), problem.dim("row_length")
        dim = -1 if problem.param("dim_last") else 0
        shape = (rows, length) if dim == -1 else (length, rows)
        g = generator(seed, device)

        def draw(dtype):
            if problem.contiguous:
                return random_tensor(shape, dist, dtype, g, device)
            return random_tensor(shape[::-1], dist, dtype, g, device).t()

        if overload == calls.SAFE:
            x = draw(problem.dtype("input"))
            if dist == "edge":  # every fifth row all -inf
                x[(slice(None, None, 5),) if dim == -1 else (slice(None), slice(None, None, 5))] = float("-inf")
            return x, dim, problem.dtype("out")
        if overload in calls.FORWARD:
            return draw(problem.dtype("input")), dim, problem.dtype("out") != problem.dtype("input")
        x = random_tensor(shape, "normal", torch.float64, g, device)
        forward = torch.log_softmax if calls.BACKWARD[overload] else torch.softmax
        output = forward(x, dim).to(problem.dtype("input"))
        return draw(problem.dtype("input")), output, dim, problem.dtype("out")

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        overload = overload_named(problem.op)
        wide = [a.detach().cpu().double() if isinstance(a, torch.Tensor) else a for a in args]
        if overload == calls.SAFE:
            return (overload(wide[0], wide[1]),)
        if overload in calls.FORWARD:
            return (overload(wide[0], wide[1], False),)
        return (overload(wide[0], wide[1], wide[2], torch.float64),)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return (0,)

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        return problem.dim("row_length")

    def bytes_moved(self, problem: Problem) -> int:
        elements = problem.dim("rows") * problem.dim("row_length")
        reads = 2 if overload_named(problem.op) in calls.BACKWARD else 1
        return elements * (reads * problem.dtype("input").itemsize + problem.dtype("out").itemsize)


SOFTMAX = SoftmaxFamily(
    name="softmax",
    version="1",
    overloads=tuple(calls.FORWARD) + tuple(calls.BACKWARD) + (calls.SAFE,),
    implementations=(TRITON, DECOMPOSITION),
)
