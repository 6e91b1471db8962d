"""The implementations of the group-norm family: Triton kernels (through a custom op on CPU) and the
decomposition. Each built callable takes the overload's arguments and returns what it returns."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..custom_call import kernel_call
from ..row_tiles import ROW_TILES, tiles_fit
from ..schema import overload_named
from . import decomposition, triton_kernel
from .calls import GroupNormCall, describe

PACKAGE = __name__.rpartition(".")[0]
TENSOR_NAMES = ("input", "weight", "bias", "grad_out", "mean", "rstd")


def _named(tensors) -> dict:
    return dict(zip(TENSOR_NAMES, tensors))


def _run_triton(tensors, params: dict):
    return triton_kernel.group_norm(_named(tensors), GroupNormCall.from_params(params["call"]), params["genome"])


def _allocate(tensors, params: dict):
    return triton_kernel.allocate(_named(tensors), GroupNormCall.from_params(params["call"]))


group_norm_rows = kernel_call("group_norm_rows", _run_triton, _allocate)


def _group_norm_call(problem: Problem, compute: Callable) -> Callable:
    """The overload's signature around compute(tensors by name, GroupNormCall) -> outputs; the
    backward's unwanted gradients are None, as in ATen."""
    overload = overload_named(problem.op)

    def group_norm(*args, **kwargs):
        call, tensors = describe(overload, args, kwargs)
        outs = iter(compute(tensors, call))
        if not call.backward:
            return tuple(outs)
        return tuple(next(outs) if wanted else None for wanted in call.output_mask)

    return group_norm


def _triton(tensors: dict, call: GroupNormCall, genome: Genome):
    return group_norm_rows([tensors.get(name) for name in TENSOR_NAMES], {"call": call.params(), "genome": genome})


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return _group_norm_call(problem, functools.partial(_triton, genome=genome))


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    return _group_norm_call(problem, functools.partial(decomposition.group_norm, variance=genome["variance"]))


def _supports_decomposition(problem: Problem, genome: Genome) -> str | None:
    if genome["variance"] != "centered" and "backward" in problem.op:
        return "the backward takes mean and rstd as given: variance has no effect"
    return None


TRITON = Implementation(
    name="group_norm_triton",
    abstraction=Abstraction.TRITON,
    genome_space=ROW_TILES,
    build=_build_triton,
    supports=tiles_fit,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.layer_norm.triton_kernel",
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
