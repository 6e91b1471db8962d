"""The backwards that sort over bag tiles (backward_sweep.sort_slots) as implementations of
kevolve::embedding_bags_backward: sweep (backward_sweep), runs (backward_runs) and fill-runs (backward_fill_runs,
runs with the zero fill folded in). On GPUs their launchers are
called, so Inductor launches the kernels; on CPU they run through the functional custom op
kevolve::bag_tile_embedding_bags_backward (the Triton interpreter, opaque to Inductor; outputs are copies, since
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
from .backward_fill_runs import embedding_bags_backward_fill_runs
from .backward_runs import embedding_bags_backward_runs
from .backward_sweep import MAX_SLOTS, embedding_bags_backward_sweep

LAUNCHERS = {"sweep": embedding_bags_backward_sweep, "runs": embedding_bags_backward_runs,
             "fill_runs": embedding_bags_backward_fill_runs}


@torch.library.custom_op("kevolve::bag_tile_embedding_bags_backward", mutates_args=())
def bag_tile_embedding_bags_backward(grads: list[Tensor], indices: list[Tensor], offsets: list[Tensor],
                                     num_weights: list[int], mode: int, algorithm: str, genome: str) -> list[Tensor]:
    grads_of_weights = LAUNCHERS[algorithm](grads, indices, offsets, num_weights, mode, json.loads(genome))
    return [g.clone() for g in grads_of_weights]


@bag_tile_embedding_bags_backward.register_fake
def _(grads, indices, offsets, num_weights, mode, algorithm, genome):
    return [g.new_empty(rows, g.shape[1]) for g, rows in zip(grads, num_weights)]


STRIDED_GRADS = ("strided grads: in the DLRM (grads that are views of the interaction's gradient) the row kernel took "
                 "1020 us a step on the H200 where the evaluator and the microbenchmark, strided views included, "
                 "measured 527 us (2026-12-04), so the search's fitness cannot be trusted there yet")


def _builder(algorithm: str, genome_space: GenomeSpace) -> Callable[[Problem, Genome], Callable]:
    """build(problem, genome) of the implementation of `algorithm` (a key of LAUNCHERS)."""

    def build(problem: Problem, genome: Genome) -> Callable:
        genome_space.validate(genome)
        text = genome_json(genome)

        def backward(grads, indices, offsets, num_weights, mode, include_last_offset):
            if grads[0].device.type == "cpu":
                return bag_tile_embedding_bags_backward(grads, indices, offsets, num_weights, mode, algorithm, text)
            return LAUNCHERS[algorithm](grads, indices, offsets, num_weights, mode, genome)

        return backward

    return build


def _fits_the_sort(problem: Problem, genome: Genome) -> str | None:
    """Slots, stacked rows and stacked bags fit int32; tiles no wider than the rows need (the single-table rule)."""
    if max(problem.dim("rows"), problem.dim("indices"), problem.dim("bags")) > MAX_SLOTS:
        return "the bag-tile sort indexes rows, slots and bags with int32"
    return single._tile_fits(problem, genome)


def _supports_sweep(problem: Problem, genome: Genome) -> str | None:
    """Contiguous grads only (see STRIDED_GRADS), and what the sort fits."""
    if not problem.contiguous:
        return STRIDED_GRADS
    return _fits_the_sort(problem, genome)


MODULES = (__name__, f"{__package__}.backward_sweep", "torch_kevolve.families.prefix_sums",
           "torch_kevolve.families.triton_launch")
SWEEP_GENOMES = GenomeSpace((("ROWS", (16, 32, 8, 64, 4)), ("UNROLL", (4, 2, 8, 1)), ("BLOCK_D", single.TILE_D),
                             ("num_warps", (4, 2, 8, 1)), ("num_stages", (1, 2))))
RUNS_GENOMES = GenomeSpace(tuple((name, values) for name, values in single.BACKWARD_TRITON.genome_space.choices
                                 if name != "algorithm"))

BACKWARD_SWEEP = Implementation(
    name="embedding_bags_backward_sweep",
    abstraction=Abstraction.TRITON,
    genome_space=SWEEP_GENOMES,
    build=_builder("sweep", SWEEP_GENOMES),
    supports=_supports_sweep,
    source_modules=MODULES,
)

BACKWARD_RUNS = Implementation(
    name="embedding_bags_backward_runs",
    abstraction=Abstraction.TRITON,
    genome_space=RUNS_GENOMES,
    build=_builder("runs", RUNS_GENOMES),
    supports=_fits_the_sort,
    source_modules=(*MODULES, f"{__package__}.backward_runs", "torch_kevolve.families.embedding_bag.backward_triton"),
)

BACKWARD_FILL_RUNS = Implementation(
    name="embedding_bags_backward_fill_runs",
    abstraction=Abstraction.TRITON,
    genome_space=RUNS_GENOMES,
    build=_builder("fill_runs", RUNS_GENOMES),
    supports=_fits_the_sort,
    source_modules=(*MODULES, f"{__package__}.backward_fill_runs",
                    "torch_kevolve.families.embedding_bag.backward_triton"),
)
