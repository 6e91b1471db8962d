"""The implementations of the jagged family: the Triton kernels (through a custom op on CPU) and the
indexing decomposition. Each built callable takes the overload's arguments and returns what it returns."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation, supports_all
from ..custom_call import named_kernel_call
from ..overload_call import overload_call
from . import decomposition, triton_kernel
from .calls import JaggedCall, describe

PACKAGE = __name__.rpartition(".")[0]
SMALLEST_TILE = 16

convert_jagged = named_kernel_call("jagged_convert", ("source", "offsets"), JaggedCall.from_params,
                                   triton_kernel.convert, triton_kernel.allocate)


def _output(outputs, call: JaggedCall):
    return outputs[0]


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(convert_jagged, genome=genome), _output)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(decomposition.convert, indexing=genome["indexing"]),
                         _output)


def _supports_triton(problem: Problem, genome: Genome) -> str | None:
    """Rejects BLOCK_D tiles wider than the inner dim needs (they would only repeat a narrower genome)."""
    widest = max(SMALLEST_TILE, 1 << max(problem.dim("inner") - 1, 0).bit_length())
    if genome["BLOCK_D"] > widest:
        return f"BLOCK_D={genome['BLOCK_D']} is wider than an inner dim of {problem.dim('inner')} needs ({widest})"
    return None


TRITON = Implementation(
    name="jagged_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((
        ("BLOCK_L", (16, 4, 8, 32, 64)),
        ("BLOCK_D", (128, 16, 32, 64, 256)),
        ("num_warps", (4, 1, 2, 8)),
        ("num_stages", (1, 2, 3)),
    )),
    build=_build_triton,
    supports=_supports_triton,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.custom_call",
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
