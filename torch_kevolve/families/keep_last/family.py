"""The keep_last family: problems, inputs, exact reference and roofline of kevolve::keep_last (the gather of
batch event truncation)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ...patterns.ops import keep_last_meaning
from ..base import KernelFamily, Unsupported
from ..segments import random_offsets
from ..tensor_inputs import generator, random_tensor
from . import calls
from .calls import KEEP_LAST
from .implementations import DECOMPOSITION, TRITON

# (segments, values, total, values' dtype, index dtype) of the example problems
EXAMPLES = [(37, 700, 300, torch.int64, torch.int64), (5, 40, 40, torch.float32, torch.int32),
            (64, 900, 0, torch.int64, torch.int64)]


@dataclass
class KeepLastFamily(KernelFamily):
    """kevolve::keep_last: 1-D values of any dtype, int32 / int64 ends, kept and offsets, total <= values."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        problem = calls.problem(self.name, overload, args, kwargs)
        if problem.dim("total") > problem.dim("values"):
            raise Unsupported("more values kept than there are: some would be read twice")
        return problem

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """A batch as truncation leaves it: kept counts splitting total (segments.random_offsets, whose edge
        distribution empties every third segment and gives the first the most), each segment that many values
        plus dropped ones splitting the rest, in schema order. Values are distinct where the dtype allows, so
        that a value read from the wrong place shows."""
        g = generator(seed, torch.device("cpu"))
        segments, n, total = problem.dim("segments"), problem.dim("values"), problem.dim("total")
        offsets = random_offsets(segments, total, dist, g)
        lengths = offsets.diff() + random_offsets(segments, n - total, dist, g).diff()
        index_dtype, value_dtype = problem.dtype("index"), problem.dtype("values")
        values = (torch.randperm(n, generator=g).to(value_dtype) if not value_dtype.is_floating_point
                  else random_tensor((n,), "normal", value_dtype, g, "cpu"))
        return (values.to(device), lengths.cumsum(0).to(device, index_dtype), offsets.diff().to(device, index_dtype),
                offsets.to(device, index_dtype), total)

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        """Batch event truncation's ATen ops on CPU (exact)."""
        values, ends, kept, offsets, total = args
        return (keep_last_meaning(values.cpu(), ends.cpu(), kept.cpu(), offsets.cpu(), total),)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return (0,)

    def bytes_moved(self, problem: Problem) -> int:
        """The kept values read and written once, and ends, kept and offsets read once."""
        segments, total = problem.dim("segments"), problem.dim("total")
        return 2 * total * problem.dtype("values").itemsize + (3 * segments + 1) * problem.dtype("index").itemsize

    def example_problems(self, overload) -> tuple[Problem, ...]:
        problems = []
        for segments, n, total, value_dtype, index_dtype in EXAMPLES:
            index = torch.zeros(segments, dtype=index_dtype)
            args = (torch.zeros(n, dtype=value_dtype), index, index, torch.zeros(segments + 1, dtype=index_dtype),
                    total)
            problems.append(self.problem(KEEP_LAST, args, {}))
        return tuple(problems)


KEEP_LAST_FAMILY = KeepLastFamily(
    name="keep_last",
    version="1",
    overloads=(KEEP_LAST,),
    implementations=(TRITON, DECOMPOSITION),
    inductor_fuses=True,
    dynamic_dims=frozenset({"values", "total"}),
    dynamic_implementations=frozenset({TRITON.name, DECOMPOSITION.name}),
)
