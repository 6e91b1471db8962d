"""The factorization-machine family: problems, inputs, float64 references and rooflines of the pattern ops
kevolve::fm_interaction and kevolve::fm_interaction_backward."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ...patterns import meanings
from ..base import KernelFamily
from ..tensor_inputs import generator, product_factors
from . import calls
from .implementations import DECOMPOSITION, TRITON


def _is_forward(problem: Problem) -> bool:
    return problem.op == str(calls.FM_INTERACTION)


def terms(problem: Problem) -> int:
    """The most products of three factors one output element sums: N D for the forward; for the backward
    2 N K (dX) or N D per sample summed over the batch (a shared dY)."""
    batch, rows, dim, k = (problem.dim(n) for n in ("batch", "rows", "dim", "k"))
    if _is_forward(problem):
        return rows * dim
    return max(2 * rows * k, (batch if problem.param("shared") else 1) * rows * dim)


def _operand(shape: tuple, strided: bool, dist: str, dtype, g, device, reach: int) -> torch.Tensor:
    """Factors of `shape`; strided: the transpose of a tensor with the last two dims swapped."""
    if not strided:
        return product_factors(shape, dist, dtype, g, device, reach, factors=3)
    swapped = product_factors((*shape[:-2], shape[-1], shape[-2]), dist, dtype, g, device, reach, factors=3)
    return swapped.transpose(-1, -2)


@dataclass
class FMInteractionFamily(KernelFamily):
    """X (Xᵀ Y) of each sample's features X [N, D] and a projection Y [N, K] (shared by the batch, or one per
    sample), forward and the gradients for X and Y; fp32/fp16/bf16/fp64."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return calls.problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """Features [batch, rows, dim], the projection and, for the backward, the output's gradient [batch, rows,
        k] first; each the transpose of its last two dims when strided. See product_factors for large."""
        batch, rows, dim, k = (problem.dim(n) for n in ("batch", "rows", "dim", "k"))
        dtype, g, strided, reach = problem.dtype("features"), generator(seed, device), not problem.contiguous, terms(problem)
        x = _operand((batch, rows, dim), strided, dist, dtype, g, device, reach)
        y = _operand((rows, k) if problem.param("shared") else (batch, rows, k), strided, dist, dtype, g, device, reach)
        if _is_forward(problem):
            return x, y
        return _operand((batch, rows, k), strided, dist, dtype, g, device, reach), x, y

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        wide = [a.detach().cpu().double() for a in args]
        if _is_forward(problem):
            return (meanings.fm_interaction_meaning(*wide),)
        return meanings.fm_interaction_backward_meaning(*wide)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return (0,) if _is_forward(problem) else (0, 1)

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        return terms(problem)

    def bytes_moved(self, problem: Problem) -> int:
        batch, rows, dim, k = (problem.dim(n) for n in ("batch", "rows", "dim", "k"))
        features, out = batch * rows * dim, batch * rows * k
        projection = rows * k if problem.param("shared") else out
        elements = features + projection + out if _is_forward(problem) else 2 * (features + projection) + out
        return elements * problem.dtype("features").itemsize

    def flops(self, problem: Problem) -> int:
        """Of the [B, D, K] association: 2 products forward, 5 backward (Xᵀ Y, Xᵀ G, two for dX, one for dY)."""
        work = 2 * problem.dim("batch") * problem.dim("rows") * problem.dim("dim") * problem.dim("k")
        return 2 * work if _is_forward(problem) else 5 * work

    def example_problems(self, overload) -> tuple[Problem, ...]:
        """Shared fp32 and fp16 projections (N, D, K not powers of two) and per-sample bf16 ones."""
        self.check_overload(overload)
        examples = []
        for batch, rows, dim, k, shared, dtype in ((3, 5, 24, 6, True, torch.float32),
                                                   (2, 4, 16, 8, False, torch.bfloat16),
                                                   (2, 7, 20, 3, True, torch.float16)):
            x = torch.empty(batch, rows, dim, dtype=dtype)
            y = x.new_empty((rows, k) if shared else (batch, rows, k))
            args = (x, y) if overload == calls.FM_INTERACTION else (x.new_empty(batch, rows, k), x, y)
            examples.append(self.problem(overload, args, {}))
        return tuple(examples)


FM_INTERACTION = FMInteractionFamily(
    name="fm_interaction",
    version="1",
    overloads=(calls.FM_INTERACTION, calls.FM_INTERACTION_BACKWARD),
    implementations=(TRITON, DECOMPOSITION),
)
