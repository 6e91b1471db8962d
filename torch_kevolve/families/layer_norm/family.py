"""The layer-norm family: problems, inputs, float64 references and rooflines of ATen's layer norm
and fused RMS norm."""
from __future__ import annotations

import math
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
class LayerNormFamily(KernelFamily):
    """`native_layer_norm` (out, mean, rstd), `_fused_rms_norm` (out, rstd) and their backward (the
    wanted gradients). ATen has no CPU kernel for `_fused_rms_norm_backward`: its reference is the
    float64 formula with the given rstd."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return calls.problem(self.name, overload, args, kwargs)

    def example_problems(self, overload) -> tuple[Problem, ...]:
        return row_examples.example_problems(self, overload)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """A [rows, row_length] input (transposed when strided), normal weight and bias; the backward's
        mean and rstd come from ATen's forward of that input."""
        rows, length = problem.dim("rows"), problem.dim("row_length")
        dtype, g = problem.dtype("input"), generator(seed, device)
        if problem.contiguous:
            x = random_tensor((rows, length), dist, dtype, g, device)
        else:
            x = random_tensor((length, rows), dist, dtype, g, device).t()
        weight = random_tensor((length,), "normal", dtype, g, device) if problem.param("weight") else None
        bias = random_tensor((length,), "normal", dtype, g, device) if problem.param("bias") else None
        eps = problem.param("eps")
        if problem.op == str(calls.FORWARD):
            return x, [length], weight, bias, eps
        if problem.op == str(calls.RMS_FORWARD):
            return x, [length], weight, eps
        _, mean, rstd = aten.native_layer_norm(x.double(), [length], None, None, eps)
        grad = random_tensor((rows, length), dist, dtype, g, device)
        stats = problem.dtype("stats")
        if problem.op == str(calls.RMS_BACKWARD):
            _, rstd = aten._fused_rms_norm(x.double(), [length], None, eps)
            return grad, x, [length], rstd.to(stats), weight, problem.param("output_mask")[:2]
        return grad, x, [length], mean.to(stats), rstd.to(stats), weight, bias, problem.param("output_mask")

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        wide = [a.detach().cpu().double() if isinstance(a, torch.Tensor) else a for a in args]
        if problem.op == str(calls.FORWARD):
            return tuple(aten.native_layer_norm(*wide))
        if problem.op == str(calls.RMS_FORWARD):
            return tuple(aten._fused_rms_norm(*wide[:3], problem.param("eps")))  # not float64's default eps
        if problem.op == str(calls.RMS_BACKWARD):
            return _rms_norm_backward(*wide)
        return tuple(aten.native_layer_norm_backward(*wide))

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        if problem.op == str(calls.FORWARD):
            return (0, 1, 2)
        if problem.op == str(calls.RMS_FORWARD):
            return (0, 1)
        return tuple(i for i, wanted in enumerate(problem.param("output_mask")) if wanted)

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        extent = problem.dim("row_length")
        if problem.op == str(calls.BACKWARD):
            if any(problem.param("output_mask")[1:]):
                extent = max(problem.dim("rows"), extent)
            # x̂ = (x - mean) * rstd: one rounding of x - mean grows by rstd * |x| (e.g. rstd = 1/sqrt(eps)
            # on rows of one element, where the exact input gradient cancels to 0).
            x, rstd = args[1], args[4]
            if x.numel() and rstd.numel():
                extent *= max(1, math.ceil(float(rstd.float().abs().amax()) * float(x.float().abs().amax())))
        return extent

    def bytes_moved(self, problem: Problem) -> int:
        rows, length = problem.dim("rows"), problem.dim("row_length")
        size, stats = problem.dtype("input").itemsize, problem.dtype("stats").itemsize
        affine = length * size * (problem.param("weight") + problem.param("bias"))
        if problem.op in (str(calls.FORWARD), str(calls.RMS_FORWARD)):
            return 2 * rows * length * size + 2 * rows * stats + affine
        return 3 * rows * length * size + 2 * rows * stats + 2 * affine


def _rms_norm_backward(grad, x, normalized_shape, rstd, weight, output_mask):
    """(grad_input, grad_weight) of out = x * rstd * weight with rstd = 1 / sqrt(mean(x^2) + eps), given rstd."""
    dims = tuple(range(x.dim() - len(normalized_shape), x.dim()))
    xhat = x * rstd
    wg = grad if weight is None else grad * weight
    grad_input = rstd * (wg - xhat * (wg * xhat).mean(dims, keepdim=True)) if output_mask[0] else None
    batch = tuple(range(x.dim() - len(normalized_shape)))
    grad_weight = (grad * xhat).sum(batch) if output_mask[1] else None
    return grad_input, grad_weight


LAYER_NORM = LayerNormFamily(
    name="layer_norm",
    version="2",
    overloads=calls.OVERLOADS,
    implementations=(TRITON, DECOMPOSITION),
)
