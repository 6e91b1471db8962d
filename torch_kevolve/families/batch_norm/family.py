"""The batch-norm family: problems, inputs, float64 references and rooflines of ATen's batch norm."""
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
class BatchNormFamily(KernelFamily):
    """`native_batch_norm` (inference, or training without running stats: it never mutates),
    `_native_batch_norm_legit_no_training`, `_native_batch_norm_legit_functional` (returns the new
    running stats) and `native_batch_norm_backward`; float32/float64."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return calls.problem(self.name, overload, args, kwargs)

    def example_problems(self, overload) -> tuple[Problem, ...]:
        return row_examples.example_problems(self, overload)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """[batch, channels(, inner)] input (channels last in memory when strided), normal affine
        parameters and running mean, running var in [0.5, 1.5); the backward's saved statistics
        come from ATen's forward."""
        batch, channels, inner = problem.dim("batch"), problem.dim("channels"), problem.dim("inner")
        dtype, g = problem.dtype("input"), generator(seed, device)
        shape = (batch, channels) if problem.param("rank") == 2 else (batch, channels, inner)
        x = random_tensor(shape, dist, dtype, g, device)
        if not problem.contiguous:
            x = random_tensor(shape[:1] + shape[2:] + shape[1:2], dist, dtype, g, device).movedim(-1, 1)
        affine = [random_tensor((channels,), "normal", dtype, g, device) if problem.param(name) else None
                  for name in ("weight", "bias")]
        running_mean = random_tensor((channels,), "normal", dtype, g, device)
        running_var = (torch.rand(channels, generator=g, device=device) + 0.5).to(dtype)
        training, momentum, eps = problem.param("training"), problem.param("momentum"), problem.param("eps")
        op = problem.op
        if op == str(calls.INFERENCE):
            return x, *affine, running_mean, running_var, momentum, eps
        if op == str(calls.FUNCTIONAL):
            return x, *affine, running_mean, running_var, True, momentum, eps
        running = (None, None) if training else (running_mean, running_var)
        if op == str(calls.FORWARD):
            return x, *affine, *running, training, momentum, eps
        _, save_mean, save_invstd = aten.native_batch_norm(x.double(), None, None, *running, training, momentum, eps)
        grad = random_tensor(shape, dist, dtype, g, device)
        return (grad, x, affine[0], *running, save_mean.to(dtype), save_invstd.to(dtype), training, eps,
                problem.param("output_mask"))

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        wide = [a.detach().cpu().double() if isinstance(a, torch.Tensor) else a for a in args]
        overload = next(o for o in self.overloads if str(o) == problem.op)
        return tuple(overload(*wide))

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        if problem.op == str(calls.BACKWARD):
            return tuple(i for i, wanted in enumerate(problem.param("output_mask")) if wanted)
        if problem.op == str(calls.FUNCTIONAL):
            return (0, 1, 2, 3, 4)
        return (0, 1, 2) if problem.param("training") else (0,)

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        return problem.dim("batch") * problem.dim("inner")

    def bytes_moved(self, problem: Problem) -> int:
        elements = problem.dim("batch") * problem.dim("channels") * problem.dim("inner")
        size = problem.dtype("input").itemsize
        per_channel = 6 * problem.dim("channels") * size
        reads = 2 if problem.op == str(calls.BACKWARD) else 1
        return elements * size * (reads + 1) + per_channel


BATCH_NORM = BatchNormFamily(
    name="batch_norm",
    version="1",
    overloads=calls.OVERLOADS,
    implementations=(TRITON, DECOMPOSITION),
)
