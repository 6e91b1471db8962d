"""The GEMM calls the family accepts, in normal form, and the Problem each describes.

mm(a [M, K], b [K, N]) -> [M, N] and addmm(bias, a, b, beta, alpha) -> beta * bias + alpha * (a @ b) with
bias [N], [1, N] (a row broadcast over M) or [M, N]. Operands may have any 2-D strides (nn.Linear passes
its weight as a transposed view); the output is a fresh contiguous [M, N] in the operands' dtype.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import Unsupported, one_device
from ..dims import static_shape
from ..schema import bind_arguments, dtype_name, dtype_named

aten = torch.ops.aten
MM, ADDMM = aten.mm.default, aten.addmm.default
DTYPES = (torch.float32, torch.float16, torch.bfloat16)  # fp64 stays with Inductor: tl.dot has none here
LAYOUTS = ("row", "column", "strided")  # row-major, column-major (a transposed view), anything else
BIAS_KINDS = ("none", "row", "full")  # mm, a [N] or [1, N] bias, a [M, N] bias


def layout(t: torch.Tensor) -> str:
    """How an operand lies in memory: 'row' (row-major), 'column' (the transpose of a row-major matrix)
    or 'strided'; a matrix that is both (one row or column) counts as row-major, a 1-D one as row or strided."""
    if t.is_contiguous():
        return "row"
    return "column" if t.t().is_contiguous() else "strided"


def _scalar(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unsupported(f"{name}={value!r} is not a real Python number")
    return float(value)


@dataclass(frozen=True)
class GemmCall:
    """One call: out [m, n] = alpha * (a [m, k] @ b [k, n]) + beta * bias (bias 'none': mm), in `dtype`."""

    m: int
    n: int
    k: int
    bias: str
    beta: float
    alpha: float
    dtype: torch.dtype

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), dtype=dtype_name(self.dtype))

    @staticmethod
    def from_params(p: dict) -> "GemmCall":
        return GemmCall(**{**p, "dtype": dtype_named(p["dtype"])})


def _bias_kind(bias: torch.Tensor, m: int, n: int) -> str:
    shape = static_shape(bias, "self")
    if shape in ((n,), (1, n)):
        return "row"
    if shape == (m, n):
        return "full"
    raise Unsupported(f"addmm's self of shape {list(shape)} is not [N], [1, N] or [M, N] (M={m}, N={n})")


def describe(overload, args: Sequence, kwargs: dict) -> tuple[GemmCall, dict]:
    """The GemmCall and the call's tensors by name (a, b, and bias for addmm); Unsupported if not ours."""
    if overload not in (MM, ADDMM):
        raise Unsupported(f"{overload} is not a GEMM of this family")
    bound = bind_arguments(overload, args, kwargs)
    if overload == MM:
        a, b, bias, beta, alpha = bound["self"], bound["mat2"], None, 0.0, 1.0
    else:
        a, b, bias = bound["mat1"], bound["mat2"], bound["self"]
        beta, alpha = _scalar(bound["beta"], "beta"), _scalar(bound["alpha"], "alpha")
    if a.dim() != 2 or b.dim() != 2:
        raise Unsupported("both operands must be 2-D")
    (m, k), (k2, n) = static_shape(a, "mat1"), static_shape(b, "mat2")
    if k != k2:
        raise Unsupported(f"inner dims differ: [{m}, {k}] @ [{k2}, {n}]")
    tensors = {"a": a, "b": b} if bias is None else {"a": a, "b": b, "bias": bias}
    dtypes = {t.dtype for t in tensors.values()}
    if len(dtypes) != 1 or a.dtype not in DTYPES:
        raise Unsupported(f"dtypes {sorted(map(str, dtypes))} are not one of fp32/fp16/bf16")
    if any(t.layout != torch.strided for t in tensors.values()):
        raise Unsupported("only dense (strided) tensors")
    one_device(*tensors.values())
    kind = "none" if bias is None else _bias_kind(bias, m, n)
    return GemmCall(m, n, k, kind, beta, alpha, a.dtype), tensors


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, t = describe(overload, args, kwargs)
    params = (("a_layout", layout(t["a"])), ("b_layout", layout(t["b"])), ("bias", call.bias))
    if overload == ADDMM:
        params += (("bias_layout", layout(t["bias"])), ("beta", call.beta), ("alpha", call.alpha))
    return Problem(
        family=family,
        op=str(overload),
        params=params,
        dims=(("M", call.m), ("N", call.n), ("K", call.k)),
        dtypes=(("a", dtype_name(call.dtype)),),
        contiguous=all(tensor.is_contiguous() for tensor in t.values()),
    )
