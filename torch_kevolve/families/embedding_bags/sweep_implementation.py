"""The sweep backward (backward_sweep) as an implementation of kevolve::embedding_bags_backward: on GPUs its
launcher is called, so Inductor launches the kernels; on CPU it runs through the functional custom op
kevolve::swept_embedding_bags_backward (the Triton interpreter, opaque to Inductor; outputs are copies, since
custom-op outputs may not alias each other). The genome travels to the custom op as JSON text.
"""
from __future__ import annotations

import json
from typing import Callable

import torch
from torch import Tensor

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..embedding_bag import implementations as single
from ..embedding_bag.ops import genome_json
from .backward_sweep import MAX_SLOTS, embedding_bags_backward_sweep


@torch.library.custom_op("kevolve::swept_embedding_bags_backward", mutates_args=())
def swept_embedding_bags_backward(grads: list[Tensor], indices: list[Tensor], offsets: list[Tensor],
                                  num_weights: list[int], mode: int, genome: str) -> list[Tensor]:
    swept = embedding_bags_backward_sweep(grads, indices, offsets, num_weights, mode, json.loads(genome))
    return [g.clone() for g in swept]


@swept_embedding_bags_backward.register_fake
def _(grads, indices, offsets, num_weights, mode, genome):
    return [g.new_empty(rows, g.shape[1]) for g, rows in zip(grads, num_weights)]


STRIDED_GRADS = ("strided grads: in the DLRM (grads that are views of the interaction's gradient) the row kernel took "
                 "1020 us a step on the H200 where the evaluator and the microbenchmark, strided views included, "
                 "measured 527 us (2026-12-04), so the search's fitness cannot be trusted there yet")


def _build(problem: Problem, genome: Genome) -> Callable:
    BACKWARD_SWEEP.genome_space.validate(genome)
    text = genome_json(genome)

    def sweep_backward(grads, indices, offsets, num_weights, mode, include_last_offset):
        if grads[0].device.type == "cpu":
            return swept_embedding_bags_backward(grads, indices, offsets, num_weights, mode, text)
        return embedding_bags_backward_sweep(grads, indices, offsets, num_weights, mode, genome)

    return sweep_backward


def _supports(problem: Problem, genome: Genome) -> str | None:
    """Contiguous grads only (see STRIDED_GRADS); slots and stacked rows fit int32; tiles no wider than the rows
    need (the single-table rule)."""
    if not problem.contiguous:
        return STRIDED_GRADS
    if max(problem.dim("rows"), problem.dim("indices")) > MAX_SLOTS:
        return "the sweep indexes rows and slots with int32"
    return single._tile_fits(problem, genome)


BACKWARD_SWEEP = Implementation(
    name="embedding_bags_backward_sweep",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((("ROWS", (16, 32, 8, 64, 4)), ("UNROLL", (4, 2, 8, 1)), ("BLOCK_D", single.TILE_D),
                              ("num_warps", (4, 2, 8, 1)), ("num_stages", (1, 2)))),
    build=_build,
    supports=_supports,
    source_modules=(__name__, f"{__package__}.backward_sweep", "torch_kevolve.families.triton_launch"),
)
