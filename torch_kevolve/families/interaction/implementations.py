"""The implementations of the interaction family: Triton kernels (through a custom op, opaque to Inductor) and the
decompositions. Each built callable takes the pattern op's arguments and returns what it returns."""
from __future__ import annotations

import functools
from typing import Callable

import torch
import triton

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation, supports_all
from ..opaque_call import unwrapped
from ..overload_call import first_output, overload_call
from ..sized_call import opaque_sized_compute, sized_describe, sized_kernel_call
from . import decomposition, triton_kernel
from .calls import PAIRWISE_DOTS_BACKWARD, InteractionCall, describe

PACKAGE = __name__.rpartition(".")[0]

TENSOR_NAMES = ("features", "first", "second", "grad")
sized_kernel_call("interaction", TENSOR_NAMES, ("batch",), InteractionCall.from_params,
                  unwrapped(triton_kernel.interaction), triton_kernel.allocate)  # registers kevolve::interaction
interaction_kernels = opaque_sized_compute(torch.ops.kevolve.interaction, TENSOR_NAMES, ("batch",))
describe_any_batch = sized_describe(describe, lambda t: {"batch": t["features"].shape[0]})


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, describe_any_batch, functools.partial(interaction_kernels, genome=genome),
                         first_output)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    return overload_call(problem, describe_any_batch,
                         functools.partial(decomposition.interaction, method=genome["method"]), first_output)


def _supports_triton(problem: Problem, genome: Genome) -> str | None:
    """The backward and the forward's gram run tl.dot (no fp64) on a [rows, rows] tile in registers. Genes without
    effect keep their defaults: PROGRAMS_PER_SM and fp32_precision for the gather algorithm (one program per
    sample, no dots), fp32_precision for half features (their dots run in tf32, exact for them). Blocks beyond
    the padded extents only repeat smaller ones."""
    backward = problem.op == str(PAIRWISE_DOTS_BACKWARD)
    gram = backward or genome["algorithm"] == "gram"
    dtype, default = problem.dtype("features"), TRITON.genome_space.default()
    if backward and genome["algorithm"] != "gram":
        return "the backward has the gram algorithm only"
    if backward and genome["fp32_precision"] == triton_kernel.SPLIT_PRECISION:
        return (f"{triton_kernel.SPLIT_PRECISION} is the forward gram's (its products are symmetric, the backward's "
                f"are not)")
    if gram and problem.dim("rows") > triton_kernel.GRAM_MAX_ROWS:
        return f"rows > {triton_kernel.GRAM_MAX_ROWS}: the [rows, rows] gram does not fit in registers"
    if gram and dtype.itemsize == 8:
        return "fp64 has no tl.dot here"
    unused = () if gram else ("PROGRAMS_PER_SM", "fp32_precision")
    if any(genome[name] != default[name] for name in unused):
        return f"{', '.join(unused)} have no effect on the gather algorithm"
    if dtype != torch.float32 and genome["fp32_precision"] != default["fp32_precision"]:
        return (f"fp32_precision {genome['fp32_precision']} has no effect on {dtype} features: their dots run in "
                f"tf32, exact for them")
    for block, extent in (("BLOCK_D", "dim"), ("BLOCK_P", "pairs")):
        if genome[block] > max(triton_kernel.TILE_MIN, triton.next_power_of_2(problem.dim(extent))):
            return f"{block} {genome[block]} exceeds the padded {extent}"
    return None


TRITON = Implementation(
    name="interaction_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((
        ("algorithm", ("gram", "gather")),
        ("fp32_precision", ("tf32x3", "ieee", triton_kernel.SPLIT_PRECISION)),  # the gram and backward dots of fp32
        # features (tf32_split: the forward gram only)
        ("PROGRAMS_PER_SM", (4, 2, 8, 16)),  # persistent programs of the gram and backward kernels
        ("BLOCK_P", (32, 16, 64, 128, 256, 512)),  # pairs per gather (forward) or atomic-add (backward) block; a
        # block of every pair has its entries computed once per program
        ("BLOCK_D", (64, 16, 32, 128, 256)),
        ("num_warps", (4, 1, 2, 8)),
        ("num_stages", (1, 2)),
    )),
    build=_build_triton,
    supports=_supports_triton,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.opaque_call",
                    "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="interaction_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("method", decomposition.METHODS),)),
    build=_build_decomposition,
    supports=supports_all,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls", "torch_kevolve.patterns.meanings"),
)
