"""The fill-runs backward (backward_fill_runs) as an implementation of kevolve::embedding_bags_backward, with the
runs genome space. On GPUs its launcher is called, so Inductor launches the kernels; on CPU it runs through the
functional custom op kevolve::fill_runs_embedding_bags_backward (the Triton interpreter, opaque to Inductor; outputs
are copies, since custom-op outputs may not alias each other). The genome travels to the custom op as JSON text.
"""
from __future__ import annotations

import json
from typing import Callable

import torch
from torch import Tensor

from ...key import Problem
from ..base import Abstraction, Genome, Implementation
from ..embedding_bag.ops import genome_json
from .backward_fill_runs import embedding_bags_backward_fill_runs
from .bag_tile_implementations import MODULES, RUNS_GENOMES, _fits_the_sort


@torch.library.custom_op("kevolve::fill_runs_embedding_bags_backward", mutates_args=())
def fill_runs_embedding_bags_backward(grads: list[Tensor], indices: list[Tensor], offsets: list[Tensor],
                                      num_weights: list[int], mode: int, genome: str) -> list[Tensor]:
    grads_of_weights = embedding_bags_backward_fill_runs(grads, indices, offsets, num_weights, mode, json.loads(genome))
    return [g.clone() for g in grads_of_weights]


@fill_runs_embedding_bags_backward.register_fake
def _(grads, indices, offsets, num_weights, mode, genome):
    return [g.new_empty(rows, g.shape[1]) for g, rows in zip(grads, num_weights)]


def _build(problem: Problem, genome: Genome) -> Callable:
    RUNS_GENOMES.validate(genome)
    text = genome_json(genome)

    def backward(grads, indices, offsets, num_weights, mode, include_last_offset):
        if grads[0].device.type == "cpu":
            return fill_runs_embedding_bags_backward(grads, indices, offsets, num_weights, mode, text)
        return embedding_bags_backward_fill_runs(grads, indices, offsets, num_weights, mode, genome)

    return backward


BACKWARD_FILL_RUNS = Implementation(
    name="embedding_bags_backward_fill_runs",
    abstraction=Abstraction.TRITON,
    genome_space=RUNS_GENOMES,
    build=_build,
    supports=_fits_the_sort,
    source_modules=(__name__, *MODULES, f"{__package__}.backward_fill_runs",
                    "torch_kevolve.families.embedding_bag.backward_triton"),
)
