"""The implementations of the bucketize family: the Triton kernels (through custom ops on CPU: one for
bucketize and searchsorted, one for the clamped bucket ids) and the decompositions. Each built callable takes
the overload's arguments and returns its bucket indices (or ids)."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..custom_call import named_kernel_call
from ..overload_call import first_output, overload_call
from ..sized_call import sized_kernel_call
from . import clamp_kernel, clamped_calls, decomposition, triton_kernel
from .calls import BucketizeCall, describe, remembered

PACKAGE = __name__.rpartition(".")[0]
SHORT_ROW = 64  # longest boundary row the linear and staged searches take
STAGED_ELEMENTS = 1 << 16  # most BLOCK x staged-tile comparisons one program holds
COMPARED_ROW = 256  # longest boundary row the compare decomposition materialises
CLAMPED = str(clamped_calls.BUCKETIZE_CLAMP_OFFSET)

bucketize_values = sized_kernel_call("bucketize_values", ("values", "boundaries"), ("per_row",),
                                     BucketizeCall.from_params, triton_kernel.bucketize, triton_kernel.allocate,
                                     shapes=("out_shape",))
clamped_bucket_ids = named_kernel_call("clamped_bucket_ids", ("values", "boundaries", "lengths", "offsets"),
                                       BucketizeCall.from_params, clamp_kernel.clamped_buckets, triton_kernel.allocate)


def _describe_remembering(problem: Problem) -> Callable:
    return functools.partial(describe, remembered=remembered(problem))


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, _describe_remembering(problem), functools.partial(bucketize_values, genome=genome),
                         first_output)


def _build_clamped_triton(problem: Problem, genome: Genome) -> Callable:
    CLAMPED_TRITON.genome_space.validate(genome)
    return overload_call(problem, clamped_calls.describe, functools.partial(clamped_bucket_ids, genome=genome),
                         first_output)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    if problem.op == CLAMPED:
        return overload_call(problem, clamped_calls.describe,
                             functools.partial(decomposition.clamp_offset, method=genome["method"]), first_output)
    compute = functools.partial(decomposition.bucketize, method=genome["method"])
    return overload_call(problem, _describe_remembering(problem), compute, first_output)


def _supports_triton(problem: Problem, genome: Genome) -> str | None:
    if problem.op == CLAMPED:
        return "the clamped bucket ids have their own kernel (bucketize_clamp_triton)"
    length = problem.dim("length")
    if genome["search"] in ("linear", "staged") and length > SHORT_ROW:
        return f"{genome['search']} search is for rows of at most {SHORT_ROW} boundaries, not {length}"
    refusal = triton_kernel.fanout_refusal(genome["search"], genome["FANOUT"], genome["BLOCK"])
    if refusal:
        return refusal
    if genome["search"] == "staged" and genome["BLOCK"] * triton_kernel.staged_tile(length) > STAGED_ELEMENTS:
        return f"BLOCK {genome['BLOCK']} x a staged row of {length} exceeds {STAGED_ELEMENTS} comparisons"
    return None


def _supports_clamped_triton(problem: Problem, genome: Genome) -> str | None:
    if problem.op != CLAMPED:
        return "this kernel computes the clamped bucket ids only"
    return triton_kernel.fanout_refusal(genome["search"], genome["FANOUT"], genome["BLOCK_ROWS"] * genome["BLOCK_COLS"])


def _supports_decomposition(problem: Problem, genome: Genome) -> str | None:
    if genome["method"] == "compare" and problem.dim("length") > COMPARED_ROW:
        return f"compare materialises every value against rows of at most {COMPARED_ROW} boundaries"
    return None


TRITON = Implementation(
    name="bucketize_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((
        ("BLOCK", (1024, 256, 512, 2048, 4096)),
        ("search", triton_kernel.SEARCHES),
        ("FANOUT", triton_kernel.FANOUTS),
        ("num_warps", (4, 1, 2, 8)),
    )),
    build=_build_triton,
    supports=_supports_triton,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.sized_call", "torch_kevolve.families.triton_launch"),
)

CLAMPED_TRITON = Implementation(
    name="bucketize_clamp_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((
        ("BLOCK_ROWS", (32, 8, 16, 64)),
        ("BLOCK_COLS", (32, 64, 128, 256)),
        ("search", ("binary", "kary")),
        ("FANOUT", triton_kernel.FANOUTS),
        ("num_warps", (4, 1, 2, 8)),
    )),
    build=_build_clamped_triton,
    supports=_supports_clamped_triton,
    source_modules=(f"{PACKAGE}.clamp_kernel", f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls",
                    f"{PACKAGE}.clamped_calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="bucketize_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("method", decomposition.METHODS),)),
    build=_build_decomposition,
    supports=_supports_decomposition,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls", f"{PACKAGE}.clamped_calls"),
)
