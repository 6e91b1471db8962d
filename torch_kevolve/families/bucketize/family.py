"""The bucketize family: problems, inputs, exact references and rooflines of bucketize, searchsorted and the
clamped bucket ids (kevolve::bucketize_clamp_offset)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import KernelFamily
from ..schema import overload_named
from ..tensor_inputs import generator, random_tensor
from . import calls, clamped_calls
from .clamped_calls import BUCKETIZE_CLAMP_OFFSET
from .implementations import CLAMPED_TRITON, DECOMPOSITION, TRITON

# (values shape, values dtype, boundaries shape, boundaries dtype, right, out_int32) of the example problems
EXAMPLES = {
    calls.BUCKETIZE: [((300,), torch.float32, (7,), torch.float32, False, False),
                      ((4, 25), torch.float16, (100,), torch.float16, True, True),
                      ((50,), torch.int64, (33,), torch.int64, False, False),
                      ((0,), torch.bfloat16, (5,), torch.bfloat16, True, False)],
    calls.SEARCHSORTED: [((3, 40), torch.float32, (3, 9), torch.float32, True, False),
                         ((20, 3), torch.int32, (65,), torch.int32, False, True)],
}
# (values shape, values dtype, boundaries shape, right, values transposed) of the clamped examples (fp32 boundaries)
CLAMPED_EXAMPLES = [((6, 40), torch.float32, (6, 9), False, True), ((3, 17), torch.float16, (3, 70), True, False)]


def _draw(shape, dist: str, dtype: torch.dtype, g: torch.Generator, device) -> torch.Tensor:
    """random_tensor's draw, but integers (except on the edge distribution) spread over up to +-2^30, so
    that searches take varied paths as real ids do."""
    if dtype.is_floating_point or dist == "edge":
        return random_tensor(shape, dist, dtype, g, device)
    info = torch.iinfo(dtype)
    low, high = max(info.min, -(1 << 30)), min(info.max, 1 << 30)
    return torch.randint(low, high + 1, shape, generator=g, device=device).to(dtype)


def _with_edges(values: torch.Tensor, boundaries: torch.Tensor, rows: int, per_row: int,
                g: torch.Generator) -> torch.Tensor:
    """Values of which every other one equals a boundary of its row, and (floats) NaN and infinities,
    with the strides of `values`."""
    flat = values.reshape(rows, per_row).clone(memory_format=torch.contiguous_format)
    length = boundaries.shape[-1]
    if length and flat.shape[1]:
        picks = torch.randint(0, length, (rows, flat[:, ::2].shape[1]), generator=g, device=values.device)
        flat[:, ::2] = boundaries.reshape(rows, length).gather(1, picks).to(values.dtype)
    if values.is_floating_point():
        flat.view(-1)[1::7] = float("nan")
        flat.view(-1)[3::11] = float("inf")
        flat.view(-1)[5::13] = float("-inf")
    return values.copy_(flat.reshape(values.shape))


def _clamp_columns(boundaries: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """MBDT's per-row lengths (0 and the full row among them) and offsets (the ids' start per row), as [rows, 1]
    columns; float boundary rows are padded with +inf past their lengths."""
    rows, length = boundaries.shape
    lengths = torch.randint(0, length + 1, (rows, 1), generator=g, device=boundaries.device)
    lengths[0], lengths[-1] = 0, length
    if boundaries.is_floating_point():
        padding = torch.arange(length, device=boundaries.device) >= lengths
        boundaries.masked_fill_(padding, float("inf"))
    return lengths, torch.cumsum(lengths + 1, 0) - (lengths + 1)


@dataclass
class BucketizeFamily(KernelFamily):
    """`bucketize` and `searchsorted` with 1-D boundaries (any value shape) or searchsorted's batched
    [*, length] boundaries; int32/int64 output, either side, mixed dtypes compared as ATen promotes
    them; and the clamped bucket ids of 2-D batched searches. Refused: sorters, bool or complex tensors,
    0-d boundaries."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        if overload == BUCKETIZE_CLAMP_OFFSET:
            return clamped_calls.problem(self.name, overload, args, kwargs)
        return calls.problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """Sorted boundary rows and values from `dist` (integers spread wide; edge: ties on the normal draw
        rounded to halves or integers in [-5, 5), every other value equal to a boundary, NaN and
        infinities), in schema order; the clamped ids' columns from _clamp_columns."""
        rows, per_row, length = (problem.dim(n) for n in ("rows", "per_row", "length"))
        g = generator(seed, device)
        batched = problem.param("batched")
        bshape = (rows, length) if batched else (length,)
        boundaries = _draw(bshape, dist, problem.dtype("boundaries"), g, device).sort(-1).values
        if batched:
            drawn = (rows, per_row) if problem.contiguous else (per_row, rows)
        else:
            drawn = (per_row if problem.contiguous else 2 * per_row,) if problem.param("values_rank") else ()
        values = _draw(drawn, dist, problem.dtype("values"), g, device)
        if not problem.contiguous:
            values = values.t() if batched else values[::2]
        if dist == "edge":
            values = _with_edges(values, boundaries, rows, per_row, g)
        right, out_int32 = problem.param("right"), problem.param("out_int32")
        if problem.op == str(BUCKETIZE_CLAMP_OFFSET):
            return values, boundaries, *_clamp_columns(boundaries, g), right
        if problem.op == str(calls.BUCKETIZE):
            return values, boundaries, out_int32, right
        return boundaries, values, out_int32, right, None, None

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        """ATen on CPU, both sides converted to the promoted dtype and then widened to float64 / int64 (the
        clamped ids: that search's buckets, clamped and offset)."""
        overload = overload_named(problem.op)
        if overload == BUCKETIZE_CLAMP_OFFSET:
            call, t = clamped_calls.describe(overload, args, {})
        else:
            call, t = calls.describe(overload, args, {}, calls.remembered(problem))
        wide = torch.float64 if call.compare_dtype.is_floating_point else torch.int64
        values, boundaries = (t[n].detach().cpu().to(call.compare_dtype).to(wide) for n in ("values", "boundaries"))
        if overload == BUCKETIZE_CLAMP_OFFSET:
            buckets = calls.SEARCHSORTED(boundaries, values, right=call.right)
            return (torch.minimum(buckets, t["lengths"].cpu()) + t["offsets"].cpu(),)
        if overload == calls.BUCKETIZE:
            return (overload(values, boundaries, out_int32=call.out_int32, right=call.right),)
        return (overload(boundaries, values, out_int32=call.out_int32, right=call.right),)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return (0,)

    def bytes_moved(self, problem: Problem) -> int:
        """Values read and buckets written once, and the boundaries read once, or (a search need not
        touch them all) one per value when the values are fewer; the clamped ids also read each row's
        int64 length and offset once."""
        rows, per_row, length = (problem.dim(n) for n in ("rows", "per_row", "length"))
        out = 4 if problem.param("out_int32") else 8
        boundaries = (rows if problem.param("batched") else 1) * length
        columns = 2 * rows * 8 if problem.op == str(BUCKETIZE_CLAMP_OFFSET) else 0
        return (rows * per_row * (problem.dtype("values").itemsize + out)
                + min(boundaries, rows * per_row) * problem.dtype("boundaries").itemsize + columns)

    def example_problems(self, overload) -> tuple[Problem, ...]:
        if overload == BUCKETIZE_CLAMP_OFFSET:
            return tuple(self._clamped_example(*example) for example in CLAMPED_EXAMPLES)
        problems = []
        for vshape, vdtype, bshape, bdtype, right, out_int32 in EXAMPLES.get(overload, ()):
            values, boundaries = torch.zeros(vshape, dtype=vdtype), torch.zeros(bshape, dtype=bdtype)
            pair = (values, boundaries) if overload == calls.BUCKETIZE else (boundaries, values)
            problems.append(self.problem(overload, pair, {"right": right, "out_int32": out_int32}))
        return tuple(problems)

    def _clamped_example(self, vshape, vdtype, bshape, right: bool, transposed: bool) -> Problem:
        values = torch.zeros(vshape[::-1], dtype=vdtype).t() if transposed else torch.zeros(vshape, dtype=vdtype)
        column = torch.zeros(vshape[0], 1, dtype=torch.int64)
        return self.problem(BUCKETIZE_CLAMP_OFFSET, (values, torch.zeros(bshape), column, column, right), {})


BUCKETIZE = BucketizeFamily(
    name="bucketize",
    version="2",
    overloads=(calls.BUCKETIZE, calls.SEARCHSORTED, BUCKETIZE_CLAMP_OFFSET),
    implementations=(TRITON, CLAMPED_TRITON, DECOMPOSITION),
    inductor_fuses=True,
    dynamic_dims=frozenset({"per_row"}),
    dynamic_implementations=frozenset({TRITON.name, DECOMPOSITION.name}),
)
