"""The implementations of the batch-norm family: Triton kernels (through a custom op on CPU) and the
decomposition. Each built callable takes the overload's arguments and returns what it returns."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..custom_call import named_kernel_call
from ..overload_call import forward_or_masked, overload_call
from . import decomposition, triton_kernel
from .calls import BatchNormCall, describe

PACKAGE = __name__.rpartition(".")[0]

TENSOR_NAMES = ("input", "weight", "bias", "running_mean", "running_var", "grad_out", "save_mean", "save_invstd")
batch_norm_channels = named_kernel_call("batch_norm_channels", TENSOR_NAMES, BatchNormCall.from_params,
                                        triton_kernel.batch_norm, triton_kernel.allocate)


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(batch_norm_channels, genome=genome), forward_or_masked)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    compute = functools.partial(decomposition.batch_norm, variance=genome["variance"])
    return overload_call(problem, describe, compute, forward_or_masked)


def _supports_triton(problem: Problem, genome: Genome) -> str | None:
    per_channel = problem.dim("batch") * problem.dim("inner")
    widest = max(64, 1 << max(per_channel - 1, 0).bit_length())
    if genome["BLOCK"] > widest:
        return f"BLOCK={genome['BLOCK']} is wider than channels of {per_channel} elements need ({widest})"
    return None


def _supports_decomposition(problem: Problem, genome: Genome) -> str | None:
    if genome["variance"] != "centered" and ("backward" in problem.op or not problem.param("training")):
        return "only training's forward computes a variance"
    return None


TRITON = Implementation(
    name="batch_norm_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((
        ("BLOCK", (1024, 256, 512, 2048, 4096, 128, 64)),
        ("num_warps", (4, 1, 2, 8)),
        ("num_stages", (1, 2, 3)),
    )),
    build=_build_triton,
    supports=_supports_triton,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="batch_norm_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("variance", decomposition.VARIANCES),)),
    build=_build_decomposition,
    supports=_supports_decomposition,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls", f"{PACKAGE}.triton_kernel"),
)
