"""The implementations of the nll_loss family: Triton kernels (through a custom op on CPU) and the
decomposition. Each built callable takes the overload's arguments and returns what it returns."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..custom_call import kernel_call
from ..schema import overload_named
from . import decomposition, triton_kernel
from .calls import NllLossCall, describe

PACKAGE = __name__.rpartition(".")[0]
TENSOR_NAMES = ("self", "target", "weight", "grad_output", "total_weight")


def _named(tensors) -> dict:
    return dict(zip(TENSOR_NAMES, tensors))


def _run_triton(tensors, params: dict):
    return triton_kernel.nll_loss(_named(tensors), NllLossCall(**params["call"]), params["genome"])


def _allocate(tensors, params: dict):
    return triton_kernel.allocate(_named(tensors), NllLossCall(**params["call"]))


nll_loss_rows = kernel_call("nll_loss_rows", _run_triton, _allocate)


def _nll_loss_call(problem: Problem, compute: Callable) -> Callable:
    """The overload's signature around compute(tensors by name, NllLossCall) -> outputs."""
    overload = overload_named(problem.op)

    def nll_loss(*args, **kwargs):
        call, tensors = describe(overload, args, kwargs)
        outs = compute(tensors, call)
        return outs[0] if call.backward else tuple(outs)

    return nll_loss


def _triton(tensors: dict, call: NllLossCall, genome: Genome):
    return nll_loss_rows([tensors.get(name) for name in TENSOR_NAMES], {"call": call.params(), "genome": genome})


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return _nll_loss_call(problem, functools.partial(_triton, genome=genome))


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    return _nll_loss_call(problem, functools.partial(decomposition.nll_loss, pick=genome["pick"]))


def _supports_triton(problem: Problem, genome: Genome) -> str | None:
    if "backward" not in problem.op and genome["BLOCK_C"] != TRITON.genome_space.default()["BLOCK_C"]:
        return "the forward reads one class per row: BLOCK_C has no effect"
    return None


def _supports_all(problem: Problem, genome: Genome) -> str | None:
    return None


TRITON = Implementation(
    name="nll_loss_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((
        ("BLOCK", (128, 32, 64, 256, 512, 1024)),
        ("BLOCK_C", (64, 16, 32, 128, 256)),
        ("num_warps", (4, 1, 2, 8)),
        ("num_stages", (1, 2, 3)),
    )),
    build=_build_triton,
    supports=_supports_triton,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="nll_loss_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("pick", decomposition.PICKS),)),
    build=_build_decomposition,
    supports=_supports_all,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls", f"{PACKAGE}.triton_kernel"),
)
