"""The implementations of the batched embedding-bag families. Each built callable takes the pattern op's
arguments and returns its list of tensors.

Triton forward: one launch for all tables (forward_triton).
Triton backwards: one stacked pass for all tables (embedding_bag.multi_table), segment (embedding_bags_backward_triton)
or rows (embedding_bags_backward_rows, embedding_bag.rows_backward).
On CPU both run through custom ops (ops.py); on GPUs the launchers are called, so Inductor launches them.
Decompositions: the plain-ATen meaning, or (backward) one stacked index_add.
"""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ...patterns import meanings
from ..base import Abstraction, Genome, GenomeSpace, Implementation, supports_all
from ..embedding_bag import implementations as single
from ..embedding_bag.arguments import MODE_MAX
from ..embedding_bag.ops import genome_json
from . import calls, decomposition, ops
from .forward_triton import embedding_bags_forward

PACKAGE = __name__.rpartition(".")[0]
SINGLE = "torch_kevolve.families.embedding_bag"


def _build_forward_triton(problem: Problem, genome: Genome) -> Callable:
    FORWARD_TRITON.genome_space.validate(genome)
    text = genome_json(genome)

    def embedding_bags(weights, indices, offsets, mode, include_last_offset):
        if weights[0].device.type == "cpu":
            return ops.batched_embedding_bags_forward(weights, indices, offsets, mode, include_last_offset, text)
        return embedding_bags_forward(weights, indices, offsets, mode, include_last_offset, genome)

    return embedding_bags


def _stacked_backward(algorithm: str, genome: Genome) -> Callable:
    """The pattern op's backward by `algorithm` (a key of ops.STACKED_BACKWARDS): the custom op on CPU, the
    launcher itself on GPUs."""
    text = genome_json(genome)
    launcher = ops.STACKED_BACKWARDS[algorithm]

    def stacked_backward(grads, indices, offsets, num_weights, mode, include_last_offset):
        if grads[0].device.type == "cpu":
            return ops.stacked_embedding_bags_backward(grads, indices, offsets, num_weights, mode, algorithm, text)
        return launcher(grads, indices, offsets, num_weights, mode, genome)

    return stacked_backward


def _build_backward_triton(problem: Problem, genome: Genome) -> Callable:
    BACKWARD_TRITON.genome_space.validate(genome)
    return _stacked_backward("segment", genome)


def _build_backward_rows(problem: Problem, genome: Genome) -> Callable:
    BACKWARD_ROWS.genome_space.validate(genome)
    return _stacked_backward("rows", genome)


def _supports_rows(problem: Problem, genome: Genome) -> str | None:
    """Sum and mean only (the sort by row), tiles no wider than the rows need (the single-table rule)."""
    if problem.param("mode") == MODE_MAX:
        return "the rows algorithm handles sum and mean, not max"
    return single._tile_fits(problem, genome)


def _supports_triton(problem: Problem, genome: Genome) -> str | None:
    """The single-table kernels' limits; the forward indexes rows of contiguous tables (the stacked backward
    copies the gradients into one contiguous block anyway)."""
    if calls.is_backward(problem):
        return single.BACKWARD_TRITON.supports(problem, genome)
    if not problem.contiguous:
        return "the forward indexes rows of contiguous tables"
    return single.FORWARD_TRITON.supports(problem, genome)


def _build_forward_decomposition(problem: Problem, genome: Genome) -> Callable:
    FORWARD_DECOMPOSITION.genome_space.validate(genome)
    return meanings.embedding_bags_meaning


def _build_backward_decomposition(problem: Problem, genome: Genome) -> Callable:
    BACKWARD_DECOMPOSITION.genome_space.validate(genome)
    return functools.partial(decomposition.embedding_bags_backward, method=genome["method"])


FORWARD_TRITON = Implementation(
    name="embedding_bags_triton",
    abstraction=Abstraction.TRITON,
    genome_space=single.FORWARD_TRITON.genome_space,
    build=_build_forward_triton,
    supports=_supports_triton,
    source_modules=(__name__, f"{PACKAGE}.forward_triton", f"{PACKAGE}.ops", "torch_kevolve.families.triton_launch"),
)

FORWARD_DECOMPOSITION = Implementation(
    name="embedding_bags_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace(()),
    build=_build_forward_decomposition,
    supports=supports_all,
    source_modules=(__name__, "torch_kevolve.patterns.meanings"),
)

BACKWARD_TRITON = Implementation(
    name="embedding_bags_backward_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace(tuple((name, ("segment",) if name == "algorithm" else values)
                                   for name, values in single.BACKWARD_TRITON.genome_space.choices)),
    build=_build_backward_triton,
    supports=_supports_triton,
    source_modules=(__name__, f"{PACKAGE}.ops", f"{SINGLE}.multi_table", *single.BACKWARD_TRITON.source_modules),
)

BACKWARD_ROWS = Implementation(
    name="embedding_bags_backward_rows",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((("ROWS", (16, 4, 1, 64)), ("BLOCK_D", single.TILE_D), ("num_warps", (4, 1, 2, 8)),
                              ("num_stages", (1, 2)))),
    build=_build_backward_rows,
    supports=_supports_rows,
    source_modules=(__name__, f"{PACKAGE}.ops", f"{SINGLE}.multi_table", f"{SINGLE}.rows_backward",
                    f"{SINGLE}.row_sort", f"{SINGLE}.backward_triton", "torch_kevolve.families.triton_launch"),
)

BACKWARD_DECOMPOSITION = Implementation(
    name="embedding_bags_backward_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("method", decomposition.METHODS),)),
    build=_build_backward_decomposition,
    supports=supports_all,
    source_modules=(__name__, f"{PACKAGE}.decomposition", "torch_kevolve.patterns.meanings"),
)
