"""The implementations of the batch-norm family: Triton kernels (through a custom op on CPU) and the
decomposition. Each built callable takes the overload's arguments and returns what it returns."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..custom_call import kernel_call
from ..schema import overload_named
from . import decomposition, triton_kernel
from .calls import BatchNormCall, describe

PACKAGE = __name__.rpartition(".")[0]
TENSOR_NAMES = ("input", "weight", "bias", "running_mean", "running_var", "grad_out", "save_mean", "save_invstd")


def _named(tensors) -> dict:
    return dict(zip(TENSOR_NAMES, tensors))


def _run_triton(tensors, params: dict):
    return triton_kernel.batch_norm(_named(tensors), BatchNormCall.from_params(params["call"]), params["genome"])


def _allocate(tensors, params: dict):
    return triton_kernel.allocate(_named(tensors), BatchNormCall.from_params(params["call"]))


batch_norm_channels = kernel_call("batch_norm_channels", _run_triton, _allocate)


def _batch_norm_call(problem: Problem, compute: Callable) -> Callable:
    """The overload's signature around compute(tensors by name, BatchNormCall) -> outputs; the
    backward's unwanted gradients are None, as in ATen."""
    overload = overload_named(problem.op)

    def batch_norm(*args, **kwargs):
        call, tensors = describe(overload, args, kwargs)
        outs = iter(compute(tensors, call))
        if not call.backward:
            return tuple(outs)
        return tuple(next(outs) if wanted else None for wanted in call.output_mask)

    return batch_norm


def _triton(tensors: dict, call: BatchNormCall, genome: Genome):
    return batch_norm_channels([tensors.get(name) for name in TENSOR_NAMES], {"call": call.params(), "genome": genome})


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return _batch_norm_call(problem, functools.partial(_triton, genome=genome))


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    return _batch_norm_call(problem, functools.partial(decomposition.batch_norm, variance=genome["variance"]))


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
