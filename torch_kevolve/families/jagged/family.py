"""The jagged family: problems, inputs, float64 references and rooflines of the one-level jagged <->
padded-dense conversions (the forward of NJT's to_padded_tensor and its gradient)."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import KernelFamily
from ..segments import inner_shape, random_offsets
from ..tensor_inputs import generator, random_tensor
from . import calls
from .implementations import DECOMPOSITION, TRITON


@dataclass
class JaggedFamily(KernelFamily):
    """`_jagged_to_padded_dense_forward` (segments longer than max_length are truncated, the rest
    padded with padding_value) and `_padded_dense_to_jagged_forward` with a static total_L (rows of a
    segment past max_length get 0, as on CUDA). One offsets tensor; inner dims flattened."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return calls.problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """Offsets from 0 to total (segments.random_offsets: empty segments, edge: truncation), random
        values or dense rows (transposed [total, inner] values when strided)."""
        batch, max_length, total = problem.dim("batch"), problem.dim("max_length"), problem.dim("total")
        dtype, g = problem.dtype("values"), generator(seed, device)
        offsets = random_offsets(batch, total, dist, generator(seed, torch.device("cpu")))
        offsets = offsets.to(device=device, dtype=problem.dtype("offsets"))
        inner = inner_shape(problem.dim("inner"), problem.param("inner_rank"))
        if problem.op == str(calls.TO_JAGGED):
            return random_tensor((batch, max_length) + inner, dist, dtype, g, device), [offsets], total
        if problem.contiguous:
            values = random_tensor((total,) + inner, dist, dtype, g, device)
        else:
            values = random_tensor(inner[::-1] + (total,), dist, dtype, g, device)
            values = values.permute(*range(values.dim())[::-1])
        return values, [offsets], [max_length], problem.param("padding_value")

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        """On float64 CPU copies: ATen for to_padded; for to_jagged, ATen's CUDA result gathered directly (CPU
        ATen refuses segments longer than max_length, and padding dense to the longest segment can take
        gigabytes: `_to_jagged`)."""
        source, (offsets,), *rest = args
        source, offsets = source.detach().cpu().double(), offsets.cpu()
        if problem.op == str(calls.TO_PADDED):
            return (calls.TO_PADDED(source, [offsets], *rest),)
        return (_to_jagged(source, offsets, *rest),)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return (0,)

    def bytes_moved(self, problem: Problem) -> int:
        """Offsets, the padded tensor and min(total, batch * max_length) packed rows (as if no segment
        were truncated), each once."""
        batch, max_length, total, inner = (problem.dim(n) for n in ("batch", "max_length", "total", "inner"))
        size = problem.dtype("values").itemsize
        return ((batch * max_length + min(total, batch * max_length)) * inner * size
                + (batch + 1) * problem.dtype("offsets").itemsize)

    def example_problems(self, overload) -> tuple[Problem, ...]:
        return tuple(self.problem(overload, args, {}) for args in _example_calls()[overload])


def _to_jagged(dense: torch.Tensor, offsets: torch.Tensor, total: int) -> torch.Tensor:
    """[total, *inner]: row offsets[b] + j is dense[b, j] for j < max_length, 0 past it and outside every
    segment."""
    out = dense.new_zeros((total,) + dense.shape[2:])
    lengths = offsets.diff().clamp(max=dense.shape[1])
    segment = torch.repeat_interleave(torch.arange(lengths.numel()), lengths)
    position = torch.arange(segment.numel()) - (lengths.cumsum(0) - lengths)[segment]
    out[offsets[:-1][segment] + position] = dense[segment, position]
    return out


@functools.cache
def _example_calls() -> dict:
    offsets = torch.tensor([0, 2, 2, 7])
    short = torch.tensor([0, 3, 3, 6], dtype=torch.int32)
    return {
        calls.TO_PADDED: [
            (torch.randn(7, 3), [offsets], [4], 0.5),
            (torch.randn(6).bfloat16(), [short], [5], 0.0),
            (torch.randn(7, 2, 2).half(), [offsets], [3], -1.0),
        ],
        calls.TO_JAGGED: [
            (torch.randn(3, 4, 3), [offsets], 7),
            (torch.randn(3, 5).bfloat16(), [short], 6),
        ],
    }


JAGGED = JaggedFamily(
    name="jagged",
    version="1",
    overloads=(calls.TO_PADDED, calls.TO_JAGGED),
    implementations=(TRITON, DECOMPOSITION),
    dynamic_dims=frozenset({"total", "batch"}),
    dynamic_implementations=frozenset({TRITON.name, DECOMPOSITION.name}),
)
