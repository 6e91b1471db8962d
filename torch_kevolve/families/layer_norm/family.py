"""The layer-norm family: problems, inputs, float64 references and rooflines of ATen's layer norm."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import KernelFamily, Unsupported
from ..tensor_inputs import generator, random_tensor
from . import calls
from .implementations import DECOMPOSITION, TRITON

aten = torch.ops.aten


@dataclass
class LayerNormFamily(KernelFamily):
    """`native_layer_norm` (out, mean, rstd) and `native_layer_norm_backward` (the wanted gradients)."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        if overload not in self.overloads:
            raise Unsupported(f"{overload} is not an overload of family {self.name}")
        return calls.problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """A [rows, row_length] input (transposed when strided), normal weight and bias; the backward's
        mean and rstd come from ATen's forward of that input."""
        rows, length = problem.dim("rows"), problem.dim("row_length")
        dtype, g = problem.dtype("input"), generator(seed, device)
        if problem.contiguous:
            x = random_tensor((rows, length), dist, dtype, g, device)
        else:
            x = random_tensor((length, rows), dist, dtype, g, device).t()
        weight = random_tensor((length,), "normal", dtype, g, device) if problem.param("weight") else None
        bias = random_tensor((length,), "normal", dtype, g, device) if problem.param("bias") else None
        eps = problem.param("eps")
        if problem.op == str(calls.FORWARD):
            return x, [length], weight, bias, eps
        _, mean, rstd = aten.native_layer_norm(x.double(), [length], None, None, eps)
        grad = random_tensor((rows, length), dist, dtype, g, device)
        stats = problem.dtype("stats")
        return grad, x, [length], mean.to(stats), rstd.to(stats), weight, bias, problem.param("output_mask")

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        wide = [a.detach().cpu().double() if isinstance(a, torch.Tensor) else a for a in args]
        if problem.op == str(calls.FORWARD):
            return tuple(aten.native_layer_norm(*wide))
        return tuple(aten.native_layer_norm_backward(*wide))

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        if problem.op == str(calls.FORWARD):
            return (0, 1, 2)
        return tuple(i for i, wanted in enumerate(problem.param("output_mask")) if wanted)

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        if problem.op == str(calls.BACKWARD) and any(problem.param("output_mask")[1:]):
            return max(problem.dim("rows"), problem.dim("row_length"))
        return problem.dim("row_length")

    def bytes_moved(self, problem: Problem) -> int:
        rows, length = problem.dim("rows"), problem.dim("row_length")
        size, stats = problem.dtype("input").itemsize, problem.dtype("stats").itemsize
        affine = length * size * (problem.param("weight") + problem.param("bias"))
        if problem.op == str(calls.FORWARD):
            return 2 * rows * length * size + 2 * rows * stats + affine
        return 3 * rows * length * size + 2 * rows * stats + 2 * affine


LAYER_NORM = LayerNormFamily(
    name="layer_norm",
    version="1",
    overloads=(calls.FORWARD, calls.BACKWARD),
    implementations=(TRITON, DECOMPOSITION),
)
