"""Example calls of the row-family overloads that PyTorch's OpInfo samples never reach (or, like
`native_group_norm` on CUDA, do not reach on every device), so the coverage suite proves them on the
families' random inputs too (`KernelFamily.example_problems`)."""
from __future__ import annotations

import functools

import torch

from ..key import Problem
from .base import KernelFamily

aten = torch.ops.aten


@functools.cache
def _example_calls() -> dict:
    x, w = torch.randn(4, 8), torch.randn(8)
    _, rstd = aten._fused_rms_norm(x, [8], w, 1e-5)
    x3, wc, bc = torch.randn(2, 4, 3), torch.randn(4), torch.randn(4)
    _, mean, group_rstd = aten.native_group_norm(x3, wc, bc, 2, 4, 3, 2, 1e-5)
    return {
        aten._safe_softmax.default: [(x, 1, None), (x, 0, None)],
        aten._fused_rms_norm.default: [(x, [8], w, 1e-5), (x, [8], None, None)],
        aten._fused_rms_norm_backward.default: [(torch.randn(4, 8), x, [8], rstd, w, [True, True])],
        aten._native_batch_norm_legit_no_training.default: [(x3, wc, bc, torch.zeros(4), torch.ones(4), 0.1, 1e-5)],
        aten._native_batch_norm_legit_functional.default: [
            (x3, wc, bc, torch.zeros(4), torch.ones(4), True, 0.1, 1e-5)],
        aten.native_group_norm.default: [(x3, wc, bc, 2, 4, 3, 2, 1e-5), (x3, None, None, 2, 4, 3, 1, 1e-5)],
        aten.native_group_norm_backward.default: [
            (torch.randn(2, 4, 3), x3, mean, group_rstd, wc, 2, 4, 3, 2, [True, True, True])],
    }


def example_problems(family: KernelFamily, overload: torch._ops.OpOverload) -> tuple[Problem, ...]:
    """The problems of the example calls of `overload` (none for overloads OpInfo reaches everywhere)."""
    return tuple(family.problem(overload, args, {}) for args in _example_calls().get(overload, ()))
