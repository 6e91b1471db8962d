"""The group-norm family: problems, inputs, float64 references and rooflines of ATen's group norm."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from .. import row_examples
from ..base import KernelFamily
from ..tensor_inputs import generator, random_tensor
from . import calls
from .implementations import DECOMPOSITION, TRITON

aten = torch.ops.aten


@dataclass
class GroupNormFamily(KernelFamily):
    """`native_group_norm` (out, mean [N, group], rstd [N, group]) and `native_group_norm_backward`."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return calls.problem(self.name, overload, args, kwargs)

    def example_problems(self, overload) -> tuple[Problem, ...]:
        return row_examples.example_problems(self, overload)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """A contiguous [N, C, HxW] input, normal weight and bias; the backward's mean and rstd come
        from ATen's forward."""
        n, c, hw = problem.dim("batch"), problem.dim("channels"), problem.dim("inner")
        dtype, g = problem.dtype("input"), generator(seed, device)
        x = random_tensor((n, c, hw), dist, dtype, g, device)
        weight = random_tensor((c,), "normal", dtype, g, device) if problem.param("weight") else None
        bias = random_tensor((c,), "normal", dtype, g, device) if problem.param("bias") else None
        groups, eps = problem.param("groups"), problem.param("eps")
        if problem.op == str(calls.FORWARD):
            return x, weight, bias, n, c, hw, groups, eps
        _, mean, rstd = aten.native_group_norm(x.double(), None, None, n, c, hw, groups, eps)
        grad = random_tensor((n, c, hw), dist, dtype, g, device)
        return grad, x, mean.to(dtype), rstd.to(dtype), weight, n, c, hw, groups, problem.param("output_mask")

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        wide = [a.detach().cpu().double() if isinstance(a, torch.Tensor) else a for a in args]
        overload = calls.FORWARD if problem.op == str(calls.FORWARD) else calls.BACKWARD
        return tuple(overload(*wide))

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        if problem.op == str(calls.FORWARD):
            return (0, 1, 2)
        return tuple(i for i, wanted in enumerate(problem.param("output_mask")) if wanted)

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        return max(problem.dim("row_length"), problem.dim("batch") * problem.dim("inner"))

    def bytes_moved(self, problem: Problem) -> int:
        elements = problem.dim("batch") * problem.dim("channels") * problem.dim("inner")
        size = problem.dtype("input").itemsize
        reads = 2 if problem.op == str(calls.BACKWARD) else 1
        return elements * size * (reads + 1) + 4 * problem.dim("channels") * size


GROUP_NORM = GroupNormFamily(
    name="group_norm",
    version="2",
    overloads=(calls.FORWARD, calls.BACKWARD),
    implementations=(TRITON, DECOMPOSITION),
)
