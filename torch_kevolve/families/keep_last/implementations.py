"""The implementations of the keep_last family: the Triton copy (through a custom op on CPU) and the scan
decomposition; each built callable takes kevolve::keep_last's arguments and returns the packed values."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation, supports_all
from ..overload_call import first_output, overload_call
from ..sized_call import sized_kernel_call
from . import decomposition, triton_kernel
from .calls import KeepLastCall, describe

PACKAGE = __name__.rpartition(".")[0]
SPLIT_GENES = {"segments": ("SEGMENTS", "WIDTH"), "positions": ("BLOCK",)}  # the genes each STRATEGY reads

kept_values = sized_kernel_call("kept_values", ("values", "ends", "kept", "offsets"), ("values", "total"),
                                KeepLastCall.from_params, triton_kernel.keep_last, triton_kernel.allocate)


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(kept_values, genome=genome), first_output)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    return overload_call(problem, describe, decomposition.scanned_gather, first_output)


def _supports_triton(problem: Problem, genome: Genome) -> str | None:
    """Genes the strategy does not read keep their defaults, so that no two genomes run the same kernel."""
    default = TRITON.genome_space.default()
    unread = [name for strategy, names in SPLIT_GENES.items() if strategy != genome["STRATEGY"] for name in names]
    changed = [name for name in unread if genome[name] != default[name]]
    return f"STRATEGY {genome['STRATEGY']} does not read {', '.join(changed)}" if changed else None


TRITON = Implementation(
    name="keep_last_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((
        ("STRATEGY", triton_kernel.STRATEGIES),
        ("SEGMENTS", (32, 16, 64, 8, 128)),
        ("WIDTH", (64, 32, 128, 16)),
        ("BLOCK", (1024, 512, 256, 2048)),
        ("num_warps", (4, 8, 2)),
    )),
    build=_build_triton,
    supports=_supports_triton,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.bucketize.triton_kernel",
                    "torch_kevolve.families.custom_call", "torch_kevolve.families.sized_call",
                    "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="keep_last_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace(()),
    build=_build_decomposition,
    supports=supports_all,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls"),
)
