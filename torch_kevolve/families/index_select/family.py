"""The gather family: problems, inputs, references and rooflines of index_select, embedding and the
dense embedding gradient."""
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
class GatherFamily(KernelFamily):
    """`index_select` along any dim, `embedding` (any index shape) and `embedding_dense_backward`
    (padding_idx rows get no gradient; scale_grad_by_freq is refused)."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return calls.problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """Values [outer, length, inner] (2-D without outer; transposed when strided), random indices
        (edge: a few rows, many repeats, the padding row among them)."""
        outer, length, inner, count = (problem.dim(n) for n in ("outer", "length", "inner", "count"))
        dtype, g = problem.dtype("values"), generator(seed, device)
        pool = min(length, 3) if dist == "edge" else length
        index = torch.randint(0, max(pool, 1), (count,), generator=g, device=device).to(problem.dtype("index"))
        padding = problem.param("padding_idx")
        if problem.op == str(calls.INDEX_SELECT):
            shape = (outer, length, inner)
            x = random_tensor(shape if problem.contiguous else shape[::-1], dist, dtype, g, device)
            x = x if problem.contiguous else x.permute(2, 1, 0)
            return x, 1, index
        if problem.op == str(calls.EMBEDDING):
            weight = random_tensor((length, inner), dist, dtype, g, device)
            return weight, index, padding, False, False
        if padding >= 0 and count:
            index[::3] = padding
        grad = random_tensor((count, inner), dist, dtype, g, device, reach=count)
        return grad, index, length, padding, False

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        wide = [a.detach().cpu().double() if isinstance(a, torch.Tensor) and a.is_floating_point()
                else a.cpu() if isinstance(a, torch.Tensor) else a for a in args]
        overload = next(o for o in self.overloads if str(o) == problem.op)
        return (overload(*wide),)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return (0,)

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        if problem.op != str(calls.EMBEDDING_BACKWARD):
            return 1
        index = args[1]
        return int(index.reshape(-1).bincount().max()) if index.numel() else 0

    def bytes_moved(self, problem: Problem) -> int:
        outer, inner, count = problem.dim("outer"), problem.dim("inner"), problem.dim("count")
        size, index = problem.dtype("values").itemsize, problem.dtype("index").itemsize
        if problem.op == str(calls.EMBEDDING_BACKWARD):
            return count * (inner * size + index) + problem.dim("length") * inner * size
        return 2 * outer * count * inner * size + count * index


GATHER = GatherFamily(
    name="gather",
    version="1",
    overloads=(calls.INDEX_SELECT, calls.EMBEDDING, calls.EMBEDDING_BACKWARD),
    implementations=(TRITON, DECOMPOSITION),
    inductor_fuses=True,  # its gathers are indexed loads, its dense gradient a scatter reading fused values
    dynamic_dims=frozenset({"count"}),
    dynamic_implementations=frozenset({TRITON.name, DECOMPOSITION.name}),
)
