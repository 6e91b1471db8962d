"""The implementations of the gather family: Triton kernels (through a custom op on CPU) and the
decomposition. Each built callable takes the overload's arguments and returns what it returns."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..overload_call import first_output, overload_call
from ..sized_call import sized_kernel_call
from . import decomposition, triton_kernel
from .calls import EMBEDDING_BACKWARD, GatherCall, describe

PACKAGE = __name__.rpartition(".")[0]

gather_rows = sized_kernel_call("gather_rows", ("values", "index"), ("count",), GatherCall.from_params,
                                triton_kernel.gather, triton_kernel.allocate, shapes=("out_shape",))
GATHER_CHOICES, BACKWARD_CHOICES = ("BLOCK",), ("BLOCK_N", "BLOCK_D")


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(gather_rows, genome=genome), first_output)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(decomposition.gather, accumulate=genome["accumulate"]),
                         first_output)


def _supports_triton(problem: Problem, genome: Genome) -> str | None:
    """Only the block sizes of the kernel the problem launches vary (the others keep their defaults)."""
    unused = GATHER_CHOICES if problem.op == str(EMBEDDING_BACKWARD) else BACKWARD_CHOICES
    default = TRITON.genome_space.default()
    if any(genome[name] != default[name] for name in unused):
        return f"{', '.join(unused)} have no effect on {problem.op}"
    return None


def _supports_decomposition(problem: Problem, genome: Genome) -> str | None:
    if genome["accumulate"] != "index_add" and problem.op != str(EMBEDDING_BACKWARD):
        return "gathers accumulate nothing"
    return None


TRITON = Implementation(
    name="gather_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((
        ("BLOCK", (1024, 256, 512, 2048, 4096)),
        ("BLOCK_N", (16, 8, 32, 64)),
        ("BLOCK_D", (128, 32, 64, 256)),
        ("num_warps", (4, 1, 2, 8)),
        ("num_stages", (1, 2, 3)),
    )),
    build=_build_triton,
    supports=_supports_triton,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.sized_call", "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="gather_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("accumulate", decomposition.ACCUMULATES),)),
    build=_build_decomposition,
    supports=_supports_decomposition,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls"),
)
