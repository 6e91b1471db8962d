"""The implementations of the nll_loss family: Triton kernels (through a custom op on CPU) and the
decomposition. Each built callable takes the overload's arguments and returns what it returns."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation, supports_all
from ..custom_call import named_kernel_call
from ..overload_call import overload_call
from . import decomposition, triton_kernel
from .calls import NONE, NllLossCall, describe

PACKAGE = __name__.rpartition(".")[0]

TENSOR_NAMES = ("self", "target", "weight", "grad_output", "total_weight")
nll_loss_rows = named_kernel_call("nll_loss_rows", TENSOR_NAMES, NllLossCall.from_params,
                                  triton_kernel.nll_loss, triton_kernel.allocate)


def _results(outputs, call: NllLossCall):
    """forward: (output, total_weight); backward: grad_input."""
    return outputs[0] if call.backward else tuple(outputs)


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(nll_loss_rows, genome=genome), _results)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    compute = functools.partial(decomposition.nll_loss, pick=genome["pick"])
    return overload_call(problem, describe, compute, _results)


def _supports_triton(problem: Problem, genome: Genome) -> str | None:
    """Genes without effect on the problem keep their defaults: BLOCK_C (forward), ROW_SPLIT (backward and
    reduction none, which split nothing)."""
    default = TRITON.genome_space.default()
    backward = "backward" in problem.op
    if not backward and genome["BLOCK_C"] != default["BLOCK_C"]:
        return "the forward reads one class per row: BLOCK_C has no effect"
    if (backward or problem.param("reduction") == NONE) and genome["ROW_SPLIT"] != default["ROW_SPLIT"]:
        return "only the sum/mean forward splits its rows: ROW_SPLIT has no effect"
    return None


TRITON = Implementation(
    name="nll_loss_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((
        ("BLOCK", (128, 32, 64, 256, 512, 1024)),
        ("BLOCK_C", (64, 16, 32, 128, 256)),
        ("ROW_SPLIT", (256, 1, 32, 1024)),  # the most programs summing the rows of a sum/mean (a power of 2)
        ("num_warps", (4, 1, 2, 8)),
        ("num_stages", (1, 2, 3)),
    )),
    build=_build_triton,
    supports=_supports_triton,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.row_tiles", "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="nll_loss_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("pick", decomposition.PICKS),)),
    build=_build_decomposition,
    supports=supports_all,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls", f"{PACKAGE}.triton_kernel"),
)
