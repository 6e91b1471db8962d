"""The implementations of the softmax family: Triton kernels (through a custom op on CPU) and the
decomposition. Each built callable takes the overload's arguments."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..custom_call import kernel_call
from ..row_tiles import ROW_TILES, tiles_fit
from ..overload_call import first_output, overload_call
from . import decomposition, triton_kernel
from .calls import SoftmaxCall, describe

PACKAGE = __name__.rpartition(".")[0]


def _run_triton(tensors, params: dict):
    return triton_kernel.softmax(tensors, SoftmaxCall.from_params(params["call"]), params["genome"])


def _allocate(tensors, params: dict):
    return triton_kernel.allocate(tensors[0], SoftmaxCall.from_params(params["call"]))


softmax_rows = kernel_call("softmax_rows", _run_triton, _allocate)


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    compute = lambda tensors, call: softmax_rows(tensors, {"call": call.params(), "genome": genome})  # noqa: E731
    return overload_call(problem, describe, compute, first_output)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(decomposition.softmax, normalizer=genome["normalizer"]),
                         first_output)


def _supports_decomposition(problem: Problem, genome: Genome) -> str | None:
    if genome["normalizer"] != "divide" and ("log" in problem.op or "backward" in problem.op):
        return "only softmax's forward divides by the row sum"
    return None


TRITON = Implementation(
    name="softmax_triton",
    abstraction=Abstraction.TRITON,
    genome_space=ROW_TILES,
    build=_build_triton,
    supports=tiles_fit,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.custom_call", "torch_kevolve.families.row_tiles",
                    "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="softmax_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("normalizer", decomposition.NORMALIZERS),)),
    build=_build_decomposition,
    supports=_supports_decomposition,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls"),
)
