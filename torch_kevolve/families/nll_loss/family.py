"""The nll_loss family: problems, inputs, float64 references and rooflines of ATen's nll_loss."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import KernelFamily
from ..tensor_inputs import generator, random_tensor
from . import calls
from .implementations import DECOMPOSITION, TRITON

aten = torch.ops.aten


@dataclass
class NllLossFamily(KernelFamily):
    """`nll_loss_forward` (output, total_weight), `nll_loss_backward` and their nll_loss2d twins, with
    class weights and ignore_index; total_weight of reduction none is not checked (ATen leaves it
    device-specific)."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return calls.problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """Log-probabilities ([classes], [batch, classes] transposed when strided, or [batch, classes,
        inner, 1] for nll_loss2d), random targets of which about a quarter (edge: a half) are
        ignore_index, positive weights."""
        batch, classes, inner = problem.dim("batch"), problem.dim("classes"), problem.dim("inner")
        dtype, g = problem.dtype("self"), generator(seed, device)
        shape = {1: (classes,), 2: (batch, classes), 4: (batch, classes, inner, 1)}[problem.param("rank")]
        if problem.contiguous or len(shape) != 2:
            x = random_tensor(shape, dist, dtype, g, device)
        else:
            x = random_tensor(shape[::-1], dist, dtype, g, device).t()
        target = torch.randint(0, classes, shape[:1] + shape[2:] if len(shape) == 4 else shape[:-1], generator=g,
                               device=device)
        ignore_index = problem.param("ignore_index")
        hits = torch.rand(target.shape, generator=g, device=device) < (0.5 if dist == "edge" else 0.25)
        target = torch.where(hits, ignore_index, target).to(problem.dtype("target"))
        weight = None
        if problem.param("weight"):
            weight = (torch.rand(classes, generator=g, device=device) + 0.5).to(dtype)
        reduction = problem.param("reduction")
        if problem.op in (str(calls.FORWARD), str(calls.FORWARD_2D)):
            return x, target, weight, reduction, ignore_index
        forward = aten.nll_loss2d_forward if len(shape) == 4 else aten.nll_loss_forward
        _, total_weight = forward(x.double(), target.long(), None if weight is None else weight.double(), calls.SUM,
                                  ignore_index)
        grad_shape = tuple(target.shape) if reduction == calls.NONE else ()
        grad = random_tensor(grad_shape, dist, dtype, g, device)
        return grad, x, target, weight, reduction, ignore_index, total_weight.to(dtype)

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        wide = [a.detach().cpu().double() if isinstance(a, torch.Tensor) and a.is_floating_point()
                else a.cpu() if isinstance(a, torch.Tensor) else a for a in args]
        overload = next(o for o in self.overloads if str(o) == problem.op)
        if overload in (calls.FORWARD, calls.FORWARD_2D):
            wide[1] = wide[1].long()
            return tuple(overload(*wide))
        wide[2] = wide[2].long()
        return (overload(*wide),)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        if problem.op in (str(calls.FORWARD), str(calls.FORWARD_2D)) and problem.param("reduction") != calls.NONE:
            return (0, 1)
        return (0,)

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        return problem.dim("batch") * problem.dim("inner") if problem.param("reduction") != calls.NONE else 1

    def bytes_moved(self, problem: Problem) -> int:
        rows, classes = problem.dim("batch") * problem.dim("inner"), problem.dim("classes")
        size, index = problem.dtype("self").itemsize, problem.dtype("target").itemsize
        weight = classes * size if problem.param("weight") else 0
        if problem.op in (str(calls.FORWARD), str(calls.FORWARD_2D)):
            return rows * (index + 2 * size) + weight
        return rows * (index + size) + rows * classes * size + weight


NLL_LOSS = NllLossFamily(
    name="nll_loss",
    version="2",
    overloads=calls.OVERLOADS,
    implementations=(TRITON, DECOMPOSITION),
)
