"""The implementations of the layer-norm family (layer and RMS norm): Triton kernels (through a
custom op on CPU) and the decomposition. Each built callable takes the overload's arguments and
returns what it returns."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..custom_call import named_kernel_call
from ..overload_call import forward_or_masked, overload_call
from ..row_tiles import ROW_TILES, tiles_fit
from . import decomposition, triton_kernel
from .calls import LayerNormCall, describe

PACKAGE = __name__.rpartition(".")[0]

TENSOR_NAMES = ("input", "weight", "bias", "grad_out", "mean", "rstd")
layer_norm_rows = named_kernel_call("layer_norm_rows", TENSOR_NAMES, LayerNormCall.from_params,
                                    triton_kernel.layer_norm, triton_kernel.allocate)


def _results(outputs, call: LayerNormCall) -> tuple:
    """forward_or_masked, cut to RMS norm's two outputs."""
    results = forward_or_masked(outputs, call)
    return results[:2] if call.rms else results


# PARAM_SPLIT: at most how many row chunks the weight/bias gradients are summed in (see triton_kernel.row_chunks);
# 64 gives a [4096, 1024] backward 64 x 4 programs of 64 rows at the default BLOCK_N. Group norm shares the gene
# (chunks of each channel's batch x inner elements): 64 gives a [64, 128, 1024] backward 128 x 64 programs of 1024.
PARAM_SPLIT_TILES = GenomeSpace(ROW_TILES.choices + (("PARAM_SPLIT", (64, 1, 16, 256)),))


def param_split_fits(problem: Problem, genome: Genome) -> str | None:
    """tiles_fit; PARAM_SPLIT other than the default only where weight or bias gradients are computed."""
    sums_params = "backward" in problem.op and any(problem.param("output_mask")[1:])
    if not sums_params and genome["PARAM_SPLIT"] != PARAM_SPLIT_TILES.default()["PARAM_SPLIT"]:
        return "PARAM_SPLIT has no effect without weight or bias gradients"
    return tiles_fit(problem, genome)


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(layer_norm_rows, genome=genome), _results)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    compute = functools.partial(decomposition.layer_norm, variance=genome["variance"])
    return overload_call(problem, describe, compute, _results)


def _supports_decomposition(problem: Problem, genome: Genome) -> str | None:
    if genome["variance"] != "centered" and "backward" in problem.op:
        return "the backward takes mean and rstd as given: variance has no effect"
    return None


TRITON = Implementation(
    name="layer_norm_triton",
    abstraction=Abstraction.TRITON,
    genome_space=PARAM_SPLIT_TILES,
    build=_build_triton,
    supports=param_split_fits,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.row_tiles", "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="layer_norm_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("variance", decomposition.VARIANCES),)),
    build=_build_decomposition,
    supports=_supports_decomposition,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls"),
)
