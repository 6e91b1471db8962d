"""The forms of the batched embedding-bag winners that fill kevolve::embedding_bags_stack's [samples, heads +
tables, dim] output (stack_forward) or read its gradient in place (stack_backward): LAYOUT_FORMS, keyed by the
layout op and the winner's implementation. On GPUs the launchers are called, so Inductor launches the kernels;
on CPU they run through functional custom ops (the Triton interpreter, opaque to Inductor; outputs are copies,
since custom-op outputs may not alias each other). The genome travels to the custom ops as JSON text.
"""
from __future__ import annotations

import json
from typing import Callable

import torch
from torch import Tensor

from ...key import Problem
from ..base import Genome, LayoutForm
from ..embedding_bag.ops import genome_json
from .bag_tile_implementations import BACKWARD_FILL_RUNS, BACKWARD_RUNS, RUNS_GENOMES
from .implementations import FORWARD_TRITON
from .stack_backward import embedding_bags_stack_backward_fill_runs, embedding_bags_stack_backward_runs
from .stack_forward import embedding_bags_stack_forward, unfit

STACK = torch.ops.kevolve.embedding_bags_stack.default
STACK_BACKWARD = torch.ops.kevolve.embedding_bags_stack_backward.default


@torch.library.custom_op("kevolve::embedding_bags_stack_triton", mutates_args=())
def embedding_bags_stack_triton(heads: list[Tensor], weights: list[Tensor], indices: list[Tensor],
                                offsets: list[Tensor], mode: int, include_last_offset: bool, genome: str) -> Tensor:
    return embedding_bags_stack_forward(heads, weights, indices, offsets, mode, include_last_offset,
                                        json.loads(genome))


@embedding_bags_stack_triton.register_fake
def _(heads, weights, indices, offsets, mode, include_last_offset, genome):
    return STACK(heads, weights, indices, offsets, mode, include_last_offset)  # the pattern op's fake


STACK_BACKWARDS = {"runs": embedding_bags_stack_backward_runs, "fill_runs": embedding_bags_stack_backward_fill_runs}


@torch.library.custom_op("kevolve::embedding_bags_stack_backward_bag_tiles", mutates_args=())
def embedding_bags_stack_backward_bag_tiles(grad: Tensor, heads: int, indices: list[Tensor], offsets: list[Tensor],
                                            num_weights: list[int], mode: int, algorithm: str,
                                            genome: str) -> list[Tensor]:
    weight_grads = STACK_BACKWARDS[algorithm](grad, heads, indices, offsets, num_weights, mode, json.loads(genome))
    return [g.clone() for g in weight_grads]


@embedding_bags_stack_backward_bag_tiles.register_fake
def _(grad, heads, indices, offsets, num_weights, mode, algorithm, genome):
    return STACK_BACKWARD(grad, heads, indices, offsets, num_weights, mode, False)  # the pattern op's fake


def _build_stack_forward(problem: Problem, genome: Genome) -> Callable | str:
    FORWARD_TRITON.genome_space.validate(genome)
    reason = unfit(genome, problem.param("tables"))
    if reason is not None:
        return reason
    text = genome_json(genome)

    def embedding_bags_stack(heads, weights, indices, offsets, mode, include_last_offset):
        if weights[0].device.type == "cpu":
            return embedding_bags_stack_triton(heads, weights, indices, offsets, mode, include_last_offset, text)
        return embedding_bags_stack_forward(heads, weights, indices, offsets, mode, include_last_offset, genome)

    return embedding_bags_stack


def _stack_forward_as_inner(stack: Callable) -> Callable:
    def embedding_bags(weights, indices, offsets, mode, include_last_offset):
        return list(stack([], weights, indices, offsets, mode, include_last_offset).unbind(1))

    return embedding_bags


def _stack_backward_builder(algorithm: str) -> Callable[[Problem, Genome], Callable]:
    """build(problem, genome) of the stack form of the runs-genome backward `algorithm` (a key of STACK_BACKWARDS)."""

    def build(problem: Problem, genome: Genome) -> Callable:
        RUNS_GENOMES.validate(genome)
        text = genome_json(genome)
        launcher = STACK_BACKWARDS[algorithm]

        def embedding_bags_stack_backward(grad, heads, indices, offsets, num_weights, mode, include_last_offset):
            if grad.device.type == "cpu":
                return embedding_bags_stack_backward_bag_tiles(grad, heads, indices, offsets, num_weights, mode,
                                                               algorithm, text)
            return launcher(grad, heads, indices, offsets, num_weights, mode, genome)

        return embedding_bags_stack_backward

    return build


def _stack_backward_as_inner(stack_backward: Callable) -> Callable:
    def embedding_bags_backward(grads, indices, offsets, num_weights, mode, include_last_offset):
        return stack_backward(torch.stack(list(grads), 1), 0, indices, offsets, num_weights, mode,
                              include_last_offset)

    return embedding_bags_backward


LAYOUT_FORMS: dict[tuple, LayoutForm] = {
    (STACK, FORWARD_TRITON.name): LayoutForm(_build_stack_forward, _stack_forward_as_inner,
                                             (__name__, f"{__package__}.stack_forward")),
    **{(STACK_BACKWARD, implementation.name): LayoutForm(_stack_backward_builder(algorithm), _stack_backward_as_inner,
                                                         (__name__, f"{__package__}.stack_backward",
                                                          f"{__package__}.backward_fill_runs"))
       for algorithm, implementation in (("runs", BACKWARD_RUNS), ("fill_runs", BACKWARD_FILL_RUNS))},
}
