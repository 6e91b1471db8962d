"""The GEMM family: problems, inputs, float64 references and rooflines of mm, addmm and linear+ReLU."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import KernelFamily
from ..schema import call_in_schema_order, overload_named
from ..tensor_inputs import generator, product_factors, random_tensor
from . import calls, relu_calls
from .implementations import B_PARTS, PRESPLIT, TRITON

EXAMPLES = {  # (M, K, N, dtype, a layout, b layout, bias shape, beta, alpha): dims off the power-of-two grid
    calls.MM: ((37, 13, 20, torch.float32, "row", "row", None, 1, 1),
               (6, 40, 17, torch.float32, "row", "column", None, 1, 1),
               (19, 24, 33, torch.bfloat16, "column", "strided", None, 1, 1)),
    calls.ADDMM: ((37, 13, 20, torch.float32, "row", "column", (20,), 1, 1),
                  (9, 30, 18, torch.float16, "strided", "row", (9, 18), 0.5, -2.0),
                  (21, 16, 5, torch.bfloat16, "column", "column", (1, 5), 2.0, 0.25)),
    relu_calls.ADDMM_RELU: ((37, 13, 20, torch.float32, "row", "column", (20,), 1, 1),
                            (9, 30, 18, torch.float32, "strided", "row", (9, 18), 1, 1)),
}


def _matrix(shape: tuple, layout: str, dist: str, dtype, g, device, reach: int, factor: bool) -> torch.Tensor:
    """Random values of `shape` (1-D or 2-D) laid out as `layout` (calls.LAYOUTS): a product factor when `factor`
    (see product_factors), else a summand; 'column' transposes a row-major draw, 'strided' takes every other
    element of rows twice as long."""
    draw = shape[::-1] if layout == "column" else (*shape[:-1], 2 * shape[-1]) if layout == "strided" else shape
    t = (product_factors(draw, dist, dtype, g, device, reach) if factor
         else random_tensor(draw, dist, dtype, g, device, reach))
    return t.t() if layout == "column" else t[..., ::2] if layout == "strided" else t


@dataclass
class GemmFamily(KernelFamily):
    """mm and addmm (bias [N], [1, N] or [M, N], any beta and alpha) of fp32/fp16/bf16 matrices with any 2-D
    strides, and fp32 linear+ReLU (kevolve::addmm_relu, addmm's rules with beta = alpha = 1); fp64, mixed dtypes
    and other bias shapes are left to Inductor."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        if overload == relu_calls.ADDMM_RELU:
            return relu_calls.problem(self.name, overload, args, kwargs)
        return calls.problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """a [M, K] and b [K, N] in their recorded layouts (see _matrix; large: products as large as fp16 sums
        allow); addmm: the bias ([N] for a row bias) first and its keyword-only beta, alpha last (schema order);
        linear+ReLU: the bias first, no scalars."""
        m, n, k = (problem.dim(d) for d in ("M", "N", "K"))
        dtype, g = problem.dtype("a"), generator(seed, device)
        a = _matrix((m, k), problem.param("a_layout"), dist, dtype, g, device, k, True)
        b = _matrix((k, n), problem.param("b_layout"), dist, dtype, g, device, k, True)
        if problem.op == str(calls.MM):
            return a, b
        shape = (n,) if problem.param("bias") == "row" else (m, n)
        bias = _matrix(shape, problem.param("bias_layout"), dist, dtype, g, device, 1, False)
        if problem.op == str(relu_calls.ADDMM_RELU):
            return bias, a, b
        return bias, a, b, problem.param("beta"), problem.param("alpha")

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        wide = [a.detach().cpu().double() if isinstance(a, torch.Tensor) else a for a in args]
        return (call_in_schema_order(overload_named(problem.op), wide),)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return (0,)

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        """K products, and the bias."""
        return problem.dim("K") + (problem.param("bias") != "none")

    def bytes_moved(self, problem: Problem) -> int:
        m, n, k = (problem.dim(d) for d in ("M", "N", "K"))
        bias = {"none": 0, "row": n, "full": m * n}[problem.param("bias")]
        return (m * k + k * n + bias + m * n) * problem.dtype("a").itemsize

    def flops(self, problem: Problem) -> int:
        return 2 * problem.dim("M") * problem.dim("N") * problem.dim("K")

    def example_problems(self, overload) -> tuple[Problem, ...]:
        """fp32, fp16 and bf16 calls in every layout, K = 13 as DLRM's first layer, row and full biases."""
        self.check_overload(overload)
        examples, g = [], generator(0, torch.device("cpu"))
        for m, k, n, dtype, a_layout, b_layout, bias, beta, alpha in EXAMPLES[overload]:
            a = _matrix((m, k), a_layout, "normal", dtype, g, "cpu", k, False)
            b = _matrix((k, n), b_layout, "normal", dtype, g, "cpu", k, False)
            args = (a, b) if bias is None else (torch.zeros(bias, dtype=dtype), a, b, beta, alpha)
            args = args[:3] if overload == relu_calls.ADDMM_RELU else args
            examples.append(self.problem(overload, args, {}))
        return tuple(examples)


GEMM = GemmFamily(
    name="gemm",
    version="2",
    overloads=(calls.MM, calls.ADDMM, relu_calls.ADDMM_RELU),
    implementations=(TRITON, PRESPLIT, B_PARTS),
    dynamic_dims=frozenset({"M", "N", "K"}),
    dynamic_implementations=frozenset({TRITON.name, PRESPLIT.name, B_PARTS.name}),
    # At K = 4096 on the H200, cuBLAS fp32 errs by about 9e-7 of the largest output and Triton's tf32x3 by
    # 2.4e-7; a 3xTF32 sum chained through the tensor cores by 1.1e-5, over the 5.2e-6 allowed here (4 times
    # fp32's 1.3e-6), which a DLRM's gradients felt (1e-2).
    error_vs_reference=4.0,
)
