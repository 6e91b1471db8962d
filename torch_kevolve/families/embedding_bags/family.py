"""The batched embedding-bag families: problems, inputs, float64 references and rooflines of the pattern ops
kevolve::embedding_bags and kevolve::embedding_bags_backward."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ...patterns import meanings
from ..base import KernelFamily
from ..embedding_bag import inputs
from . import calls
from .implementations import (BACKWARD_DECOMPOSITION, BACKWARD_ROWS, BACKWARD_TRITON, FORWARD_DECOMPOSITION,
                              FORWARD_TRITON)
from .bag_tile_implementations import BACKWARD_FILL_RUNS, BACKWARD_RUNS, BACKWARD_SWEEP


def table_problems(problem: Problem) -> list[Problem]:
    """One single-table problem (the embedding_bag family's dims and params) per table: totals split evenly."""
    tables = problem.param("tables")
    shares = zip(*(calls.split(problem.dim(n), tables) for n in ("rows", "indices", "bags")))
    return [Problem("embedding_bag", "aten._embedding_bag.default",
                    (("mode", problem.param("mode")), ("padding_idx", -1),
                     ("include_last_offset", problem.param("include_last_offset")), ("per_sample_weights", False)),
                    (("num_weights", max(rows, 1)), ("dim", problem.dim("dim")), ("num_indices", n), ("num_bags", max(bags, 1))),
                    ())
            for rows, n, bags in shares]


@dataclass
class EmbeddingBagsFamily(KernelFamily):
    """Sum or mean bags of many tables at once (one width and dtype; no padding index or per-sample weights),
    forward and dense weight gradients."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return calls.problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """Per table: bags as the embedding_bag family draws them (seed + table), then tables (forward) or
        gradients of the pooled rows (backward) from `dist`."""
        dtype, dim = problem.dtype("values"), problem.dim("dim")
        index_dtype, offsets_dtype = problem.dtype("index"), problem.dtype("offsets")
        g = inputs.generator(seed, device)
        values, indices, offsets, rows = [], [], [], []
        for t, table in enumerate(table_problems(problem)):
            index, offset = inputs.bags(table, dist, seed + t)
            indices.append(index.to(device, index_dtype))
            offsets.append(offset.to(device, offsets_dtype))
            rows.append(table.dim("num_weights"))
            if calls.is_backward(problem):
                reach = inputs.most_repeats(index)
                values.append(inputs.values((table.dim("num_bags"), dim), dist, reach, dtype, g, device))
            else:
                reach = inputs.longest_bag(offset, table.dim("num_bags"), index.numel())
                values.append(inputs.table((rows[-1], dim), dist, reach, dtype, g, device))
        mode, ilo = problem.param("mode"), problem.param("include_last_offset")
        if calls.is_backward(problem):
            return values, indices, offsets, rows, mode, ilo
        return values, indices, offsets, mode, ilo

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        """ATen's CPU embedding bag (or its backward) per table, in float64."""
        values, rest = [v.detach().cpu().double() for v in args[0]], args[1:]
        indices, offsets = [i.cpu() for i in rest[0]], [o.cpu() for o in rest[1]]
        if calls.is_backward(problem):
            return tuple(meanings.embedding_bags_backward_meaning(values, indices, offsets, *rest[2:]))
        return tuple(meanings.embedding_bags_meaning(values, indices, offsets, *rest[2:]))

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return tuple(range(problem.param("tables")))

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        """The most terms one output row sums: the longest bag (forward) or the most used row (backward)."""
        if calls.is_backward(problem):
            return max((inputs.most_repeats(i.cpu()) for i in args[1]), default=1)
        ilo = problem.param("include_last_offset")
        return max((inputs.longest_bag(o.cpu(), o.shape[0] - ilo, i.numel()) for i, o in zip(args[1], args[2])),
                   default=1)

    def bytes_moved(self, problem: Problem) -> int:
        """Forward: the distinct rows the lookups are expected to touch (inputs.rows_touched over all tables),
        indices, offsets and pooled rows; backward: the pooled rows' gradients, indices, offsets and every table
        row written once."""
        size = problem.dtype("values").itemsize
        rows, dim, n, bags = (problem.dim(k) for k in ("rows", "dim", "indices", "bags"))
        index_bytes = n * problem.dtype("index").itemsize + bags * problem.dtype("offsets").itemsize
        if calls.is_backward(problem):
            return bags * dim * size + index_bytes + rows * dim * size
        return inputs.rows_touched(n, rows) * dim * size + index_bytes + bags * dim * size

    def example_problems(self, overload) -> tuple[Problem, ...]:
        """Three small tables in fp32 (sum, int64) and bf16 (mean, int32, include_last_offset)."""
        self.check_overload(overload)
        examples = []
        for mode, ilo, dtype, index in ((0, False, torch.float32, torch.int64), (1, True, torch.bfloat16, torch.int32)):
            weights = [torch.empty(rows, 16, dtype=dtype) for rows in (11, 7, 20)]
            indices = [torch.zeros(n, dtype=index) for n in (9, 4, 12)]
            offsets = [torch.zeros(4 + ilo, dtype=index) for _ in weights]
            if overload == calls.FORWARD:
                args = (weights, indices, offsets, mode, ilo)
            else:
                args = ([torch.empty(4, 16, dtype=dtype) for _ in weights], indices, offsets, [11, 7, 20], mode, ilo)
            examples.append(self.problem(overload, args, {}))
        return tuple(examples)


EMBEDDING_BAGS = EmbeddingBagsFamily(
    name="embedding_bags",
    version="1",
    overloads=(calls.FORWARD,),
    implementations=(FORWARD_TRITON, FORWARD_DECOMPOSITION),
    dynamic_dims=frozenset({"indices", "bags"}),
    dynamic_implementations=frozenset({FORWARD_TRITON.name, FORWARD_DECOMPOSITION.name}),
)

EMBEDDING_BAGS_BACKWARD = EmbeddingBagsFamily(
    name="embedding_bags_backward",
    version="1",
    overloads=(calls.BACKWARD,),
    implementations=(BACKWARD_TRITON, BACKWARD_ROWS, BACKWARD_SWEEP, BACKWARD_RUNS, BACKWARD_FILL_RUNS,
                     BACKWARD_DECOMPOSITION),
    dynamic_dims=frozenset({"indices", "bags"}),
    dynamic_implementations=frozenset({BACKWARD_TRITON.name, BACKWARD_SWEEP.name, BACKWARD_RUNS.name,
                                        BACKWARD_FILL_RUNS.name, BACKWARD_DECOMPOSITION.name}),
)
