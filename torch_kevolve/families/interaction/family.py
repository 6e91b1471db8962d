"""The interaction family: problems, inputs, float64 references and rooflines of the pattern ops
kevolve::pairwise_dots and kevolve::pairwise_dots_backward."""
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


def _pairs(rows: int, pairs: int, dist: str, g: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
    """DLRM's pairs (the strict lower triangle) when `pairs` is their number, else random pairs; edge: random
    pairs with i == j, repeated pairs and negative indices among them."""
    if dist != "edge" and pairs == rows * (rows - 1) // 2:
        first, second = torch.tril_indices(rows, rows, offset=-1, device=device)
        return first, second
    first, second = torch.randint(0, max(rows, 1), (2, pairs), generator=g, device=device)
    if dist == "edge" and pairs:
        second[::3] = first[::3]
        first[1::4], second[1::4] = first[0], second[0]
        first[2::5] -= rows
    return first, second


def touches(first: torch.Tensor, second: torch.Tensor, rows: int) -> int:
    """The most pair ends on one row (a pair (k, k) counts twice): the terms one feature gradient sums."""
    if not first.numel():
        return 0
    ends = torch.cat([first, second]).long().cpu() % rows
    return int(ends.bincount(minlength=rows).max())


@dataclass
class InteractionFamily(KernelFamily):
    """The dot interaction of each sample's rows over given index pairs (any pairs: repeats, i == j and
    negative indices too), forward and gradient for the features; fp32/fp16/bf16/fp64, int32/int64 indices."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return calls.problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """Features [batch, rows, dim] (transposed last dims when strided), the pairs (see _pairs) and, for the
        backward, the dots' gradient [batch, pairs] (transposed when strided); see product_factors for large."""
        batch, rows, dim, pairs = (problem.dim(n) for n in ("batch", "rows", "dim", "pairs"))
        dtype, g = problem.dtype("features"), generator(seed, device)
        strided = not problem.contiguous
        x = product_factors((batch, dim, rows) if strided else (batch, rows, dim), dist, dtype, g, device, dim)
        x = x.transpose(1, 2) if strided else x
        first, second = (t.to(problem.dtype("index")) for t in _pairs(rows, pairs, dist, g, device))
        if problem.op == str(calls.PAIRWISE_DOTS):
            return x, first, second
        grad = product_factors((pairs, batch) if strided else (batch, pairs), dist, dtype, g, device, max(pairs, dim))
        return (grad.t() if strided else grad), x, first, second

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        wide = [a.detach().cpu().double() if a.is_floating_point() else a.cpu() for a in args]
        if problem.op == str(calls.PAIRWISE_DOTS):
            return (meanings.pairwise_dots_meaning(*wide),)
        return (meanings.pairwise_dots_backward_meaning(*wide),)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return (0,)

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        if problem.op == str(calls.PAIRWISE_DOTS):
            return problem.dim("dim")
        return touches(args[2], args[3], problem.dim("rows"))

    def bytes_moved(self, problem: Problem) -> int:
        batch, rows, dim, pairs = (problem.dim(n) for n in ("batch", "rows", "dim", "pairs"))
        size, index = problem.dtype("features").itemsize, problem.dtype("index").itemsize
        features, dots = batch * rows * dim * size, batch * pairs * size
        if problem.op == str(calls.PAIRWISE_DOTS):
            return features + dots + 2 * pairs * index
        return 2 * features + dots + 2 * pairs * index

    def flops(self, problem: Problem) -> int:
        work = 2 * problem.dim("batch") * problem.dim("pairs") * problem.dim("dim")
        return work if problem.op == str(calls.PAIRWISE_DOTS) else 2 * work

    def example_problems(self, overload) -> tuple[Problem, ...]:
        """DLRM-tiny's interaction (4 rows: 6 lower-triangle pairs) in fp32 and bf16, and random pairs in fp16."""
        self.check_overload(overload)
        examples = []
        for batch, rows, dim, pairs, dtype, index in ((3, 4, 8, 6, torch.float32, torch.int64),
                                                     (2, 4, 8, 6, torch.bfloat16, torch.int64),
                                                     (2, 5, 24, 7, torch.float16, torch.int32)):
            x = torch.empty(batch, rows, dim, dtype=dtype)
            first = torch.zeros(pairs, dtype=index)
            args = (x, first, first) if overload == calls.PAIRWISE_DOTS else (x.new_empty(batch, pairs), x, first, first)
            examples.append(self.problem(overload, args, {}))
        return tuple(examples)


INTERACTION = InteractionFamily(
    name="interaction",
    version="1",
    overloads=(calls.PAIRWISE_DOTS, calls.PAIRWISE_DOTS_BACKWARD),
    implementations=(TRITON, DECOMPOSITION),
    dynamic_dims=frozenset({"batch"}),
    dynamic_implementations=frozenset({TRITON.name, DECOMPOSITION.name}),
)
