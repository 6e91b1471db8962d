"""The implementations of the group-norm family: Triton kernels (through a custom op on CPU) and the
decomposition. Each built callable takes the overload's arguments and returns what it returns."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..custom_call import named_kernel_call
from ..layer_norm.implementations import PARAM_SPLIT_TILES, param_split_fits
from ..overload_call import forward_or_masked, overload_call
from . import decomposition, triton_kernel
from .calls import GroupNormCall, describe

PACKAGE = __name__.rpartition(".")[0]

TENSOR_NAMES = ("input", "weight", "bias", "grad_out", "mean", "rstd")
group_norm_rows = named_kernel_call("group_norm_rows", TENSOR_NAMES, GroupNormCall.from_params,
                                    triton_kernel.group_norm, triton_kernel.allocate)


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(group_norm_rows, genome=genome), forward_or_masked)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    compute = functools.partial(decomposition.group_norm, variance=genome["variance"])
    return overload_call(problem, describe, compute, forward_or_masked)


def _supports_decomposition(problem: Problem, genome: Genome) -> str | None:
    if genome["variance"] != "centered" and "backward" in problem.op:
        return "the backward takes mean and rstd as given: variance has no effect"
    return None


TRITON = Implementation(
    name="group_norm_triton",
    abstraction=Abstraction.TRITON,
    genome_space=PARAM_SPLIT_TILES,
    build=_build_triton,
    supports=param_split_fits,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.layer_norm.triton_kernel",
                    "torch_kevolve.families.layer_norm.implementations",
                    "torch_kevolve.families.batch_norm.triton_kernel", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.row_tiles", "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="group_norm_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("variance", decomposition.VARIANCES),)),
    build=_build_decomposition,
    supports=_supports_decomposition,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls", f"{PACKAGE}.triton_kernel"),
)
