"""The implementations of the jagged family: the Triton kernels (through a custom op on CPU) and the
indexing decomposition. Each built callable takes the overload's arguments and returns what it returns."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation, supports_all
from ..overload_call import first_output, overload_call
from ..segment_tiles import SEGMENT_TILES, inner_tiles_fit
from ..sized_call import sized_kernel_call
from . import decomposition, triton_kernel
from .calls import JaggedCall, describe

PACKAGE = __name__.rpartition(".")[0]

convert_jagged = sized_kernel_call("jagged_convert", ("source", "offsets"), ("total", "batch"),
                                   JaggedCall.from_params, triton_kernel.convert, triton_kernel.allocate)


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(convert_jagged, genome=genome), first_output)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(decomposition.convert, indexing=genome["indexing"]),
                         first_output)


TRITON = Implementation(
    name="jagged_triton",
    abstraction=Abstraction.TRITON,
    genome_space=SEGMENT_TILES,
    build=_build_triton,
    supports=inner_tiles_fit,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.sized_call", "torch_kevolve.families.segment_tiles",
                    "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="jagged_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("indexing", decomposition.INDEXINGS),)),
    build=_build_decomposition,
    supports=supports_all,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls"),
)
