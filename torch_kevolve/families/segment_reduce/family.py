"""The segment_reduce family: problems, inputs, float64 references and rooflines of segment_reduce along
axis 0 and its gradient."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import KernelFamily
from ..schema import call_in_schema_order, schema_values
from ..segments import inner_shape, longest, random_offsets
from ..tensor_inputs import generator, random_tensor
from . import calls
from .implementations import DECOMPOSITION, ENDS, ONE_PASS_BACKWARD, ROWS_BACKWARD, TRITON


@dataclass
class SegmentReduceFamily(KernelFamily):
    """`segment_reduce` with reduce sum, mean, max or min along axis 0, by lengths or offsets, with or
    without an initial value, and `_segment_reduce_backward` of those. Lengths and offsets are not
    validated (a kernel never reads them back to the host)."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return calls.problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """Every schema argument: segments from segments.random_offsets (empty ones; edge: a long
        first segment and data rounded to a few levels, so max and min tie), data transposed when
        strided; backward: the forward's output on that data and a random gradient."""
        segments, rows = problem.dim("segments"), problem.dim("rows")
        dtype, g = problem.dtype("data"), generator(seed, device)
        offsets = random_offsets(segments, rows, dist, generator(seed, torch.device("cpu")))
        inner = inner_shape(problem.dim("inner"), problem.param("inner_rank"))
        reach = max(longest(offsets), 1)
        if problem.contiguous or not inner:
            data = random_tensor((rows,) + inner, dist, dtype, g, device, reach)
        else:
            data = random_tensor(inner[::-1] + (rows,), dist, dtype, g, device, reach)
            data = data.permute(*range(data.dim())[::-1])
        index_dtype = problem.dtype("index")
        index = offsets.diff() if problem.param("by_lengths") else offsets
        index = index.to(device=device, dtype=index_dtype)
        lengths, offsets = (index, None) if problem.param("by_lengths") else (None, index)
        reduce, initial = problem.param("reduce"), problem.param("initial")
        if problem.op == str(calls.FORWARD):
            return data, reduce, lengths, None, offsets, 0, False, initial
        output = calls.FORWARD(data, reduce, lengths=lengths, offsets=offsets, initial=initial)
        grad = random_tensor(output.shape, dist, dtype, g, device)
        return grad, output, data, reduce, lengths, offsets, 0, initial

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        overload = calls.FORWARD if problem.op == str(calls.FORWARD) else calls.BACKWARD
        wide = [a.detach().cpu().double() if isinstance(a, torch.Tensor) and a.is_floating_point()
                else a.cpu() if isinstance(a, torch.Tensor) else a for a in schema_values(overload, args, {})]
        return (call_in_schema_order(overload, wide),)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return (0,)

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        """Sums and means add up to the longest segment and the initial value."""
        if problem.op != str(calls.FORWARD) or problem.param("reduce") not in ("sum", "mean"):
            return 1
        call, t = calls.describe(calls.FORWARD, args, {})
        return longest(calls.offsets_of(t["index"], call).cpu()) + 1

    def bytes_moved(self, problem: Problem) -> int:
        segments, rows, inner = problem.dim("segments"), problem.dim("rows"), problem.dim("inner")
        size = problem.dtype("data").itemsize
        index = (segments + 1) * problem.dtype("index").itemsize
        if problem.op == str(calls.FORWARD):
            return (rows + segments) * inner * size + index
        reads_twice = problem.param("reduce") in ("max", "min")  # also the data and the forward's output
        return (2 if reads_twice else 1) * (rows + segments) * inner * size + index

    def example_problems(self, overload) -> tuple[Problem, ...]:
        return tuple(self.problem(overload, args, kwargs) for args, kwargs in _example_calls()[overload])


@functools.cache
def _example_calls() -> dict:
    lengths = torch.tensor([2, 0, 5])
    offsets = torch.tensor([0, 2, 2, 7], dtype=torch.int32)
    forward = [
        ((torch.randn(7, 3), "sum"), {"lengths": lengths}),
        ((torch.randn(7).bfloat16(), "max"), {"offsets": offsets}),
        ((torch.randn(7, 2, 2).half(), "mean"), {"lengths": lengths.int(), "initial": 1.5}),
        ((torch.randn(7, 3), "min"), {"offsets": offsets.long(), "initial": 0.5}),
    ]
    backward = []
    for (data, reduce), kwargs in forward:
        output = calls.FORWARD(data, reduce, **kwargs)
        backward.append(((torch.randn_like(output), output, data, reduce), kwargs))
    return {calls.FORWARD: forward, calls.BACKWARD: backward}


SEGMENT_REDUCE = SegmentReduceFamily(
    name="segment_reduce",
    version="1",
    overloads=(calls.FORWARD, calls.BACKWARD),
    # the one-pass gradient first: the default Triton kernel of the max and min gradients (the row-tile one, which
    # takes only those too, is the search's to choose); then the ends forward, the default Triton forward; the
    # Triton kernels stay the default of the sum and mean gradients
    implementations=(ONE_PASS_BACKWARD, ROWS_BACKWARD, ENDS, TRITON, DECOMPOSITION),
    dynamic_dims=frozenset({"rows", "segments"}),
    dynamic_implementations=frozenset({TRITON.name, ENDS.name, ONE_PASS_BACKWARD.name, ROWS_BACKWARD.name,
                                        DECOMPOSITION.name}),
)
