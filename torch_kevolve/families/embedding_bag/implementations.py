"""The implementations of the embedding-bag families: genome spaces, builders and constraints.

Each built callable takes the ATen overload's positional arguments and returns what it returns.
"""
from __future__ import annotations

import functools
from typing import Callable

import torch

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation, supports_all
from . import backward_triton, decomposition, forward_triton
from .arguments import MODE_MAX, reject_unsupported_flags
from .backward_triton import ALGORITHMS
from .ops import genome_json

PACKAGE = __name__.rpartition(".")[0]
# Defaults (first values) are the fastest measured on H100 for a 1M x 128 table, 262144 indices:
# forward 32x128 tiles, 1 bag, 1 warp; backward segment, runs of 8, 4 slots, 1 warp
# (219 us vs atomic 276 us in fp32, 135 vs 529 us in bf16; CUDA-graph timing).
TILE_D = (128, 64, 256, 32, 16)
SMALLEST_TILE_D = min(TILE_D)


def _forward_call(compute: Callable) -> Callable:
    """`aten._embedding_bag`'s signature around compute(weight, indices, offsets, psw, mode, ilo, padding_idx),
    ilo as an int: the kernels subtract it from a count, and torch 2.11 cannot subtract a bool from a symbolic one."""

    def embedding_bag(
        weight,
        indices,
        offsets,
        scale_grad_by_freq=False,
        mode=0,
        sparse=False,
        per_sample_weights=None,
        include_last_offset=False,
        padding_idx=-1,
    ):
        reject_unsupported_flags(scale_grad_by_freq, sparse)
        return compute(weight, indices, offsets, per_sample_weights, mode, int(include_last_offset), padding_idx)

    return embedding_bag


def _backward_call(problem: Problem, compute: Callable) -> Callable:
    """The backward overload's signature around
    compute(grad, indices, offsets or None, offset2bag, max_indices, psw, num_weights, mode, padding_idx)."""
    if problem.op == str(torch.ops.aten._embedding_bag_dense_backward.default):

        def embedding_bag_dense_backward(
            grad,
            indices,
            offset2bag,
            bag_size,
            maximum_indices,
            num_weights,
            scale_grad_by_freq,
            mode,
            per_sample_weights,
            padding_idx=-1,
        ):
            reject_unsupported_flags(scale_grad_by_freq, False)
            return compute(
                grad, indices, None, offset2bag, maximum_indices, per_sample_weights, num_weights, mode, padding_idx
            )

        return embedding_bag_dense_backward

    def embedding_bag_backward(
        grad,
        indices,
        offsets,
        offset2bag,
        bag_size,
        maximum_indices,
        num_weights,
        scale_grad_by_freq,
        mode,
        sparse,
        per_sample_weights,
        padding_idx=-1,
    ):
        reject_unsupported_flags(scale_grad_by_freq, sparse)
        return compute(
            grad, indices, offsets, offset2bag, maximum_indices, per_sample_weights, num_weights, mode, padding_idx
        )

    return embedding_bag_backward


def _tile_fits(problem: Problem, genome: Genome) -> str | None:
    """Rejects BLOCK_D tiles wider than the rows need (they would only repeat a narrower genome)."""
    dim = problem.dim("dim")
    widest = max(SMALLEST_TILE_D, 1 << (dim - 1).bit_length())
    if genome["BLOCK_D"] > widest:
        return f"BLOCK_D={genome['BLOCK_D']} is wider than rows of {dim} need ({widest})"
    return None


def _by_device(custom_op: Callable, launcher: Callable) -> Callable:
    """CPU tensors go through the custom op (the Triton interpreter, opaque to Inductor); GPU tensors call
    the launcher itself, so a traced graph holds the Triton kernel and Inductor's wrapper launches it."""

    def compute(first: torch.Tensor, *rest):
        return (custom_op if first.device.type == "cpu" else launcher)(first, *rest)

    return compute


def _build_forward_triton(problem: Problem, genome: Genome) -> Callable:
    FORWARD_TRITON.genome_space.validate(genome)
    return _forward_call(_by_device(
        functools.partial(torch.ops.kevolve.embedding_bag_forward, genome=genome_json(genome)),
        functools.partial(forward_triton.embedding_bag_forward, genome=genome),
    ))


def _build_forward_decomposition(problem: Problem, genome: Genome) -> Callable:
    FORWARD_DECOMPOSITION.genome_space.validate(genome)
    return _forward_call(functools.partial(decomposition.embedding_bag_forward, reduce=genome["reduce"]))


def _supports_forward_decomposition(problem: Problem, genome: Genome) -> str | None:
    if problem.param("mode") == MODE_MAX and genome["reduce"] != "index_add":
        return "max mode reduces with scatter_reduce: reduce has no effect, only index_add is kept"
    return None


def _build_backward_triton(problem: Problem, genome: Genome) -> Callable:
    BACKWARD_TRITON.genome_space.validate(genome)
    return _backward_call(problem, _by_device(
        functools.partial(torch.ops.kevolve.embedding_bag_backward, genome=genome_json(genome)),
        functools.partial(backward_triton.embedding_bag_backward, genome=genome),
    ))


def _supports_backward_triton(problem: Problem, genome: Genome) -> str | None:
    if genome["algorithm"] == "segment" and problem.param("mode") == MODE_MAX:
        return "the segment algorithm handles sum and mean; max mode needs the atomic algorithm"
    return _tile_fits(problem, genome)


def _build_backward_decomposition(problem: Problem, genome: Genome) -> Callable:
    BACKWARD_DECOMPOSITION.genome_space.validate(genome)
    return _backward_call(problem, functools.partial(decomposition.embedding_bag_backward, reduce=genome["reduce"]))


FORWARD_TRITON = Implementation(
    name="embedding_bag_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace(
        (
            ("BLOCK_N", (32, 16, 64, 8, 1)),
            ("BLOCK_D", TILE_D),
            ("BAGS_PER_PROGRAM", (1, 2, 4, 8)),
            ("num_warps", (1, 2, 4, 8)),
            ("num_stages", (1, 2, 3)),
        )
    ),
    build=_build_forward_triton,
    supports=_tile_fits,
    source_modules=(f"{PACKAGE}.forward_triton", f"{PACKAGE}.layout", f"{PACKAGE}.ops", "torch_kevolve.families.triton_launch"),
)

FORWARD_DECOMPOSITION = Implementation(
    name="embedding_bag_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("reduce", decomposition.REDUCTIONS),)),
    build=_build_forward_decomposition,
    supports=_supports_forward_decomposition,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.bags", f"{PACKAGE}.layout"),
)

BACKWARD_TRITON = Implementation(
    name="embedding_bag_backward_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace(
        (
            ("algorithm", ALGORITHMS),
            ("BLOCK_N", (8, 32, 16, 64, 1)),
            ("BLOCK_D", TILE_D),
            ("ITEMS_PER_PROGRAM", (4, 1, 16, 64)),
            ("num_warps", (1, 8, 4, 2)),
            ("num_stages", (1, 2, 3)),
        )
    ),
    build=_build_backward_triton,
    supports=_supports_backward_triton,
    source_modules=(f"{PACKAGE}.backward_triton", f"{PACKAGE}.bags", f"{PACKAGE}.ops", "torch_kevolve.families.triton_launch"),
)

BACKWARD_DECOMPOSITION = Implementation(
    name="embedding_bag_backward_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("reduce", decomposition.REDUCTIONS),)),
    build=_build_backward_decomposition,
    supports=supports_all,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.bags"),
)
