"""The implementations of the map_id family: the Triton lookup (through a custom op on CPU) and the radix
decomposition; each built callable takes kevolve::map_id's arguments and returns its rows."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..bucketize.triton_kernel import FANOUTS, fanout_refusal
from ..custom_call import named_kernel_call
from ..overload_call import first_output, overload_call
from . import decomposition, triton_kernel
from .calls import MapIdCall, describe

PACKAGE = __name__.rpartition(".")[0]
BUCKET_BITS = (16, 12, 14, 18, 10)  # 2^BUCKET_BITS radix buckets
BUCKETS_PER_KEY = 4  # most radix buckets per vocabulary key: past it the bucket table outweighs the lookups
COARSE = (256, 512, 1024, 128)  # keys in the coarse search's table

looked_up_rows = named_kernel_call("looked_up_rows", ("ids", "vocabulary", "rows"), MapIdCall.from_params,
                                   triton_kernel.map_id, triton_kernel.allocate)


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(looked_up_rows, genome=genome), first_output)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(decomposition.radix_lookup, bits=genome["BUCKET_BITS"]),
                         first_output)


def _too_many_buckets(problem: Problem, genome: Genome) -> str | None:
    if 1 << genome["BUCKET_BITS"] > BUCKETS_PER_KEY * problem.dim("length"):
        return (f"2^{genome['BUCKET_BITS']} buckets for {problem.dim('length')} keys: more than {BUCKETS_PER_KEY} "
                f"per key")
    return None


def _supports_triton(problem: Problem, genome: Genome) -> str | None:
    refusal = fanout_refusal(genome["SEARCH"], genome["FANOUT"], genome["BLOCK"])
    if refusal:
        return refusal
    if genome["SEARCH"] != "coarse" and genome["COARSE"] != COARSE[0]:
        return "COARSE varies the coarse search only"
    if genome["SEARCH"] != "radix":
        if genome["BUCKET_BITS"] != BUCKET_BITS[0]:
            return f"the {genome['SEARCH']} search has no buckets: BUCKET_BITS varies the radix search only"
        return None
    return _too_many_buckets(problem, genome)


TRITON = Implementation(
    name="map_id_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((
        ("SEARCH", triton_kernel.SEARCHES),
        ("BUCKET_BITS", BUCKET_BITS),
        ("FANOUT", FANOUTS),
        ("COARSE", COARSE),
        ("BLOCK", (512, 256, 1024, 128)),
        ("num_warps", (4, 8, 2)),
    )),
    build=_build_triton,
    supports=_supports_triton,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.bucketize.triton_kernel",
                    "torch_kevolve.families.custom_call", "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="map_id_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("BUCKET_BITS", BUCKET_BITS),)),
    build=_build_decomposition,
    supports=_too_many_buckets,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls", "torch_kevolve.families.bucketize.decomposition"),
)
