"""The pattern ops: `kevolve::` custom ops with a fake, a plain-ATen meaning (their eager implementation and
their decomposition back to ATen) and autograd. Families implement them like ATen overloads."""
from __future__ import annotations

from typing import Callable

import torch

from .meanings import pairwise_dots_backward_meaning, pairwise_dots_meaning


@torch.library.custom_op("kevolve::pairwise_dots", mutates_args=())
def pairwise_dots(features: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Dots of the pairs (first[p], second[p]) of each sample's rows: features [B, F, D] -> [B, P]."""
    return pairwise_dots_meaning(features, first, second)


@pairwise_dots.register_fake
def _(features, first, second):
    return features.new_empty(features.shape[0], first.shape[0])


@torch.library.custom_op("kevolve::pairwise_dots_backward", mutates_args=())
def pairwise_dots_backward(grad: torch.Tensor, features: torch.Tensor, first: torch.Tensor,
                           second: torch.Tensor) -> torch.Tensor:
    """The gradient [B, F, D] of pairwise_dots for its features, given the gradient [B, P] of its output."""
    return pairwise_dots_backward_meaning(grad, features, first, second)


@pairwise_dots_backward.register_fake
def _(grad, features, first, second):
    return torch.empty_like(features, memory_format=torch.contiguous_format)


def _save(ctx, inputs, output) -> None:
    features, first, second = inputs
    ctx.save_for_backward(features, first, second)


def _pairwise_dots_grad(ctx, grad):
    features, first, second = ctx.saved_tensors
    return torch.ops.kevolve.pairwise_dots_backward(grad, features, first, second), None, None


pairwise_dots.register_autograd(_pairwise_dots_grad, setup_context=_save)

MEANINGS: dict[torch._ops.OpOverload, Callable] = {
    torch.ops.kevolve.pairwise_dots.default: pairwise_dots_meaning,
    torch.ops.kevolve.pairwise_dots_backward.default: pairwise_dots_backward_meaning,
}


def is_pattern_op(target) -> bool:
    """Whether `target` is one of the pattern ops."""
    return target in MEANINGS


def meaning(overload: torch._ops.OpOverload) -> Callable:
    """The plain-ATen function computing pattern op `overload` (same arguments, same result)."""
    return MEANINGS[overload]
