"""The implementations of the segment_reduce family: the Triton kernels (through a custom op on CPU) and
the decomposition. Each built callable takes the overload's arguments and returns what it returns."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..overload_call import first_output, overload_call
from ..segment_tiles import SEGMENT_TILES, inner_tiles_fit
from ..sized_call import sized_kernel_call
from . import decomposition, triton_kernel
from .calls import BACKWARD, SegmentCall, describe

PACKAGE = __name__.rpartition(".")[0]

reduce_segments = sized_kernel_call("segment_reduce_rows", ("data", "index", "grad", "output"),
                                    ("rows", "segments"), SegmentCall.from_params, triton_kernel.reduce,
                                    triton_kernel.allocate)


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(reduce_segments, genome=genome), first_output)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(decomposition.reduce, accumulate=genome["accumulate"]),
                         first_output)


def _supports_decomposition(problem: Problem, genome: Genome) -> str | None:
    if genome["accumulate"] == "one_hot" and (problem.op == str(BACKWARD) or problem.param("reduce") not in ("sum", "mean")):
        return "the one-hot matmul only accumulates forward sums and means"
    return None


TRITON = Implementation(
    name="segment_reduce_triton",
    abstraction=Abstraction.TRITON,
    genome_space=SEGMENT_TILES,
    build=_build_triton,
    supports=inner_tiles_fit,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.sized_call", "torch_kevolve.families.segment_tiles",
                    "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="segment_reduce_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("accumulate", decomposition.ACCUMULATES),)),
    build=_build_decomposition,
    supports=_supports_decomposition,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls"),
)
