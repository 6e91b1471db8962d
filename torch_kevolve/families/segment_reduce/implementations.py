"""The implementations of the segment_reduce family: the Triton kernels (through a custom op on CPU), the ends
Triton forward, the one-pass and the row-tile Triton gradients of max and min, and the decomposition. Each built
callable takes the overload's arguments and returns what it returns."""
from __future__ import annotations

import functools
from typing import Callable

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..overload_call import first_output, overload_call
from ..segment_tiles import SEGMENT_TILES, inner_tiles_fit
from ..sized_call import sized_kernel_call
from . import decomposition, ends_forward, lengths_ends, one_pass_backward, rows_backward, triton_kernel
from .calls import BACKWARD, SegmentCall, describe

PACKAGE = __name__.rpartition(".")[0]

reduce_segments = sized_kernel_call("segment_reduce_rows", ("data", "index", "grad", "output"),
                                    ("rows", "segments"), SegmentCall.from_params, triton_kernel.reduce,
                                    triton_kernel.allocate)
ends_segments = sized_kernel_call("segment_reduce_ends", ("data", "index"), ("rows", "segments"),
                                  SegmentCall.from_params, ends_forward.reduce, triton_kernel.allocate)
one_pass_segments_backward = sized_kernel_call("segment_reduce_one_pass_backward", ("data", "index", "grad", "output"),
                                              ("rows", "segments"), SegmentCall.from_params, one_pass_backward.backward,
                                              triton_kernel.allocate)
rows_segments_backward = sized_kernel_call("segment_reduce_rows_backward", ("data", "index", "grad", "output"),
                                           ("rows", "segments"), SegmentCall.from_params, rows_backward.backward,
                                           triton_kernel.allocate)
REGISTERS_PER_THREAD = 32  # fp32 values of the held tile per thread, before spills become likely


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(reduce_segments, genome=genome), first_output)


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(decomposition.reduce, accumulate=genome["accumulate"]),
                         first_output)


def _supports_decomposition(problem: Problem, genome: Genome) -> str | None:
    if genome["accumulate"] == "one_hot" and (problem.op == str(BACKWARD) or problem.param("reduce") not in ("sum", "mean")):
        return "the one-hot matmul only accumulates forward sums and means"
    return None


TRITON = Implementation(
    name="segment_reduce_triton",
    abstraction=Abstraction.TRITON,
    genome_space=SEGMENT_TILES,
    build=_build_triton,
    supports=inner_tiles_fit,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.sized_call", "torch_kevolve.families.segment_tiles",
                    "torch_kevolve.families.triton_launch"),
)


def _build_ends(problem: Problem, genome: Genome) -> Callable:
    ENDS.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(ends_segments, genome=genome), first_output)


def _lengths_to_ends_fits(problem: Problem, genome: Genome) -> str | None:
    """LENGTHS_TO_ENDS other than "cumsum" only where segments come as lengths (offsets are read as they are), and
    only over segments few enough for lengths_ends.MOST_STEPS."""
    way = genome["LENGTHS_TO_ENDS"]
    if way != "cumsum" and not problem.param("by_lengths"):
        return f"LENGTHS_TO_ENDS={way!r} reads lengths; segments given as offsets are read as they are"
    if lengths_ends.steps(way, problem.dim("segments")) > lengths_ends.MOST_STEPS:
        return f"LENGTHS_TO_ENDS={way!r} over {problem.dim('segments')} segments: over {lengths_ends.MOST_STEPS} steps"
    return None


def _supports_ends(problem: Problem, genome: Genome) -> str | None:
    """The forward only; BLOCK_D no wider than the inner dim needs; LENGTHS_TO_ENDS as _lengths_to_ends_fits says."""
    if problem.op == str(BACKWARD):
        return "the ends kernel reduces segments forward only"
    return _lengths_to_ends_fits(problem, genome) or inner_tiles_fit(problem, genome)


ENDS_FROM_LENGTHS = ("LENGTHS_TO_ENDS", lengths_ends.LENGTHS_TO_ENDS)  # how the kernels find segments from lengths

ENDS = Implementation(
    name="segment_reduce_ends",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace(SEGMENT_TILES.choices + (ENDS_FROM_LENGTHS,)),
    build=_build_ends,
    supports=_supports_ends,
    source_modules=(f"{PACKAGE}.ends_forward", f"{PACKAGE}.lengths_ends", f"{PACKAGE}.triton_kernel",
                    f"{PACKAGE}.calls", "torch_kevolve.families.prefix_sums", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.sized_call", "torch_kevolve.families.segment_tiles",
                    "torch_kevolve.families.triton_launch"),
)


def _max_or_min_gradient(problem: Problem) -> bool:
    return problem.op == str(BACKWARD) and problem.param("reduce") in ("max", "min")


def _build_one_pass(problem: Problem, genome: Genome) -> Callable:
    ONE_PASS_BACKWARD.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(one_pass_segments_backward, genome=genome), first_output)


def _supports_one_pass(problem: Problem, genome: Genome) -> str | None:
    """The gradient of max and min only (sum and mean read their data once already, or not at all); BLOCK_D no
    wider than the inner dim needs; the held tile within REGISTERS_PER_THREAD values per thread and its element
    offsets within int32; TAIL_FIX other than "reread" only with TAIL_PASSES 1; LENGTHS_TO_ENDS as
    _lengths_to_ends_fits says."""
    if not _max_or_min_gradient(problem):
        return "one pass only changes the gradient of max and min (the others read each row once already)"
    held = genome["RESIDENT_ROWS"] * genome["BLOCK_D"]
    if held > REGISTERS_PER_THREAD * 32 * genome["num_warps"]:
        return f"a held tile of {held} values needs over {REGISTERS_PER_THREAD} registers per thread"
    if genome["RESIDENT_ROWS"] * problem.dim("inner") >= 2 ** 31:
        return "the held tile's element offsets are int32: RESIDENT_ROWS rows of the inner dim must stay below 2^31"
    if genome["TAIL_PASSES"] == 2 and genome["TAIL_FIX"] != "reread":
        return f"TAIL_FIX={genome['TAIL_FIX']!r} fixes a tail written at once (TAIL_PASSES 1); 2 passes fix nothing"
    return _lengths_to_ends_fits(problem, genome) or inner_tiles_fit(problem, genome)


ONE_PASS_BACKWARD = Implementation(
    name="segment_reduce_backward_one_pass",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((
        ("RESIDENT_ROWS", (64, 128, 256, 512, 32)),
        ("TAIL_PASSES", (1, 2)),  # one_pass_backward's two ways with the rows past the held ones
        ("TAIL_FIX", one_pass_backward.TAIL_FIXES),  # with TAIL_PASSES 1: how shared tail hits get their share
        ("BLOCK_N", (32, 16, 64)),
        ("BLOCK_D", (64, 32, 16, 128)),
        ("num_warps", (4, 8, 16, 2)),
        # the tail loop's pipeline depth (tl.range); 3 first: on the H100 it also brought the kernel in Inductor's
        # graph from 76 registers to 64 (8 programs an SM, not 6), and the bf16 jagged gradient from 101.3 to 95.2 us
        ("num_stages", (3, 1, 2, 4)),
        ENDS_FROM_LENGTHS,
    )),
    build=_build_one_pass,
    supports=_supports_one_pass,
    source_modules=(f"{PACKAGE}.one_pass_backward", f"{PACKAGE}.ends_forward", f"{PACKAGE}.lengths_ends",
                    f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.prefix_sums",
                    "torch_kevolve.families.custom_call", "torch_kevolve.families.sized_call",
                    "torch_kevolve.families.segment_tiles", "torch_kevolve.families.triton_launch"),
)


def _build_rows(problem: Problem, genome: Genome) -> Callable:
    ROWS_BACKWARD.genome_space.validate(genome)
    return overload_call(problem, describe, functools.partial(rows_segments_backward, genome=genome), first_output)


def _supports_rows(problem: Problem, genome: Genome) -> str | None:
    """The gradient of max and min only (the segment kernels move sum and mean gradients at 84-90% of copy);
    BLOCK_D no wider than the inner dim needs."""
    if not _max_or_min_gradient(problem):
        return "the row-tile gradient is that of max and min"
    return inner_tiles_fit(problem, genome)


ROWS_BACKWARD = Implementation(
    name="segment_reduce_backward_rows",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((
        ("BLOCK_R", (8, 16, 32, 64, 128)),
        ("BLOCK_D", (128, 64, 32, 16, 256)),
        ("num_warps", (4, 8, 2, 1)),
        ("num_stages", (1,)),
    )),
    build=_build_rows,
    supports=_supports_rows,
    source_modules=(f"{PACKAGE}.rows_backward", f"{PACKAGE}.one_pass_backward", f"{PACKAGE}.triton_kernel",
                    f"{PACKAGE}.calls", "torch_kevolve.families.custom_call", "torch_kevolve.families.sized_call",
                    "torch_kevolve.families.segment_tiles", "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="segment_reduce_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("accumulate", decomposition.ACCUMULATES),)),
    build=_build_decomposition,
    supports=_supports_decomposition,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.calls"),
)
