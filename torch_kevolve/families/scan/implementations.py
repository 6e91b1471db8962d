"""The implementations of the scan family: the Triton kernel (through a custom op on CPU) and the
doubling decomposition. Each built callable takes the overload's arguments."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation, supports_all
from ..custom_call import kernel_call
from ..overload_call import first_output, overload_call
from ..row_tiles import ROW_TILES, tiles_fit
from . import decomposition, triton_kernel
from .calls import ScanCall, describe

PACKAGE = __name__.rpartition(".")[0]

scan_rows = kernel_call(
    "scan_rows",
    lambda tensors, params: triton_kernel.scan(tensors, ScanCall.from_params(params["call"]), params["genome"]),
    lambda tensors, params: triton_kernel.allocate(tensors[0], ScanCall.from_params(params["call"])),
)


def _describe_remembering(problem: Problem) -> Callable:
    """describe with the problem's output dtype for calls that leave out the keyword-only dtype."""
    return functools.partial(describe, dtype_if_absent=problem.dtype("out"))


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    compute = lambda tensors, call: scan_rows(list(tensors), {"call": call.params(), "genome": genome})  # noqa: E731
    return overload_call(problem, _describe_remembering(problem), compute, first_output)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    compute = functools.partial(decomposition.scan, span=genome["span"])
    return overload_call(problem, _describe_remembering(problem), compute, first_output)


TRITON = Implementation(
    name="scan_triton",
    abstraction=Abstraction.TRITON,
    genome_space=ROW_TILES,
    build=_build_triton,
    supports=tiles_fit,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.softmax.triton_kernel",
                    "torch_kevolve.families.custom_call", "torch_kevolve.families.row_tiles",
                    "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="scan_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("span", decomposition.SPANS),)),
    build=_build_decomposition,
    supports=supports_all,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls"),
)
