"""The implementations of the factorization-machine family: Triton kernels (through a custom op on CPU) and
the decompositions. Each built callable takes the pattern op's arguments and returns what it returns."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation, supports_all
from ..custom_call import named_kernel_call
from ..overload_call import overload_call
from . import decomposition, triton_kernel
from .calls import FMCall, describe

PACKAGE = __name__.rpartition(".")[0]

fm_interaction_kernels = named_kernel_call("fm_interaction_kernels", ("features", "projection", "grad"),
                                           FMCall.from_params, triton_kernel.fm_interaction, triton_kernel.allocate)


def _outputs(outputs, call: FMCall):
    """The output of the forward, the (grad_features, grad_projection) pair of the backward."""
    return tuple(outputs) if call.backward else outputs[0]


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(fm_interaction_kernels, genome=genome), _outputs)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(decomposition.fm_interaction, method=genome["method"]),
                         _outputs)


def _supports_triton(problem: Problem, genome: Genome) -> str | None:
    """The [rows, k] and [rows, rows] tiles and a [rows, BLOCK_D] slice of features must fit in registers, and
    tl.dot has no fp64 here; a BLOCK_D beyond the padded dim only repeats a smaller one."""
    rows, dim, k = (problem.dim(n) for n in ("rows", "dim", "k"))
    if problem.dtype("features").itemsize == 8:
        return "fp64 has no tl.dot here"
    if rows > triton_kernel.MAX_ROWS:
        return f"rows > {triton_kernel.MAX_ROWS}: the [rows, rows] and [rows, k] tiles do not fit in registers"
    if k > triton_kernel.MAX_K:
        return f"k > {triton_kernel.MAX_K}: the [rows, k] tiles do not fit in registers"
    if triton_kernel.padded(rows) * genome["BLOCK_D"] > triton_kernel.MAX_TILE:
        return f"a [rows, BLOCK_D] slice of more than {triton_kernel.MAX_TILE} features does not fit in registers"
    if genome["BLOCK_D"] > triton_kernel.padded(dim):
        return f"BLOCK_D {genome['BLOCK_D']} exceeds the padded dim"
    return None


TRITON = Implementation(
    name="fm_interaction_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((
        ("algorithm", ("project", "gram")),
        ("BLOCK_D", (64, 16, 32, 128, 256)),
        ("num_warps", (4, 1, 2, 8)),
        ("num_stages", (1, 2, 3)),
    )),
    build=_build_triton,
    supports=_supports_triton,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="fm_interaction_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("method", decomposition.METHODS),)),
    build=_build_decomposition,
    supports=supports_all,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls", "torch_kevolve.patterns.meanings"),
)
