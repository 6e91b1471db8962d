"""Sums of embedding gradients in post-grad ATen graphs. A table looked up twice (a sequence model's item table,
for its history and its target) gets add(embedding_backward(g1, i1, N), embedding_backward(g2, i2, N)): two dense
[N, D] gradients, each zero-filled and scattered into, then a third pass adding them. One backward over the
concatenated lookups computes the same sum with one [N, D] buffer (`merged_embedding_backward`), whichever kernel
then claims it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.fx import Node

from . import ops  # noqa: F401  (registers the kevolve pattern ops)

_BACKWARD = torch.ops.kevolve.embedding_backward.default


@dataclass(frozen=True)
class GradientSum:
    """`root` = add(first, second) of two kevolve::embedding_backward nodes used by the add alone; `args` feed
    merged_embedding_backward."""

    root: Node
    first: Node
    second: Node
    args: tuple


def _unscaled_backward(node) -> bool:
    """Whether `node` is a kevolve::embedding_backward without frequency scaling (its counts are per call, so
    scaled gradients do not add up to one scaled call's) that nothing but one user reads."""
    return (isinstance(node, Node) and node.op == "call_function" and node.target is _BACKWARD
            and len(node.users) == 1 and not node.args[4])


def find_gradient_sum(node: Node) -> GradientSum | None:
    """The sum of two unscaled embedding gradients of one table (same rows, padding row and dtype) at `node`."""
    if not (node.op == "call_function" and node.target is torch.ops.aten.add.Tensor and len(node.args) == 2
            and node.kwargs.get("alpha", 1) == 1):
        return None
    first, second = node.args
    if not (_unscaled_backward(first) and _unscaled_backward(second) and first is not second):
        return None
    grad_a, indices_a, num_weights, padding_idx, _ = first.args
    grad_b, indices_b, *same = second.args
    if same[:2] != [num_weights, padding_idx] or grad_a.meta["val"].dtype != grad_b.meta["val"].dtype:
        return None
    return GradientSum(node, first, second, (grad_a, indices_a, grad_b, indices_b, num_weights, padding_idx))


def merged_embedding_backward(grad_a: torch.Tensor, indices_a: torch.Tensor, grad_b: torch.Tensor,
                              indices_b: torch.Tensor, num_weights: int, padding_idx: int) -> torch.Tensor:
    """embedding_backward(grad_a, indices_a) + embedding_backward(grad_b, indices_b) as one backward over both
    lookups flattened and concatenated (int64 indices where the two index dtypes differ)."""
    dim = grad_a.shape[-1]
    index_dtype = indices_a.dtype if indices_a.dtype == indices_b.dtype else torch.int64
    grads = torch.cat([grad_a.reshape(-1, dim), grad_b.reshape(-1, dim)])
    indices = torch.cat([indices_a.reshape(-1).to(index_dtype), indices_b.reshape(-1).to(index_dtype)])
    return torch.ops.kevolve.embedding_backward(grads, indices, num_weights, padding_idx, False)
