"""The scan family: problems, inputs, float64 references and rooflines of cumsum and cumprod."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import KernelFamily
from ..schema import overload_named
from ..tensor_inputs import generator, random_tensor
from . import calls
from .implementations import DECOMPOSITION, TRITON


@dataclass
class ScanFamily(KernelFamily):
    """`cumsum` and `cumprod` along any dim, with an optional output dtype (integers scan in int64)."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return calls.problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """Rows along the last dim ([rows, row_length]) or the first, transposed when strided; cumprod
        draws from [0.5, 1.5) (edge: also exact zeros) so that products stay finite."""
        rows, length = problem.dim("rows"), problem.dim("row_length")
        dim = -1 if problem.param("dim_last") else 0
        shape = (rows, length) if dim == -1 else (length, rows)
        drawn = shape if problem.contiguous else shape[::-1]
        dtype, g = problem.dtype("self"), generator(seed, device)
        if overload_named(problem.op) == calls.aten.cumprod.default and dtype.is_floating_point:
            x = torch.rand(drawn, generator=g, device=device) + 0.5
            if dist == "edge":
                x[..., ::7] = 0
            x = x.to(dtype)
        else:
            x = random_tensor(drawn, dist, dtype, g, device, length)
        return (x if problem.contiguous else x.t()), dim

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        x, dim = args[0].detach().cpu(), args[1]
        out = problem.dtype("out")
        wide = torch.float64 if out.is_floating_point else torch.int64
        return (overload_named(problem.op)(x.to(wide) if x.is_floating_point() or out.is_floating_point else x, dim,
                                           dtype=wide),)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return (0,)

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        return problem.dim("row_length")

    def bytes_moved(self, problem: Problem) -> int:
        elements = problem.dim("rows") * problem.dim("row_length")
        return elements * (problem.dtype("self").itemsize + problem.dtype("out").itemsize)


SCAN = ScanFamily(
    name="scan",
    version="2",
    overloads=tuple(calls.COMBINES),
    implementations=(TRITON, DECOMPOSITION),
)
