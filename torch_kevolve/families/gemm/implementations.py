"""The implementations of the GEMM family: the Triton kernel, and for fp32 the 3xTF32 kernels on operands split
into tf32 parts first (both operands, or b only), which also run linear+ReLU (each through a custom op on CPU).
The built callables take the arguments of the problem's op (mm, addmm or kevolve::addmm_relu) and return what it
returns."""
from __future__ import annotations

import functools
from typing import Callable

import torch
import triton

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..checking import HALF
from ..overload_call import first_output, overload_call
from ..sized_call import sized_describe, sized_kernel_call
from . import b_parts_kernel, calls, presplit_kernel, relu_calls, triton_kernel
from .calls import GemmCall

PACKAGE = __name__.rpartition(".")[0]
SHARED_MEMORY_BYTES = 227 * 1024  # per block on Hopper (H100, H200): the pipelined a and b tiles must fit
ACCUMULATOR_PER_THREAD = 128  # fp32 accumulator registers per thread (of 255) before spills become certain
SPLIT_BELOW_TILES = 132  # split K only when the output tiles number fewer than an H100's / H200's SMs

SIZES = ("m", "n", "k")  # the call's sizes, which may vary from run to run (symbolic)
gemm_tiles = sized_kernel_call("gemm_tiles", ("a", "b", "bias"), SIZES, GemmCall.from_params, triton_kernel.gemm,
                               triton_kernel.allocate)
gemm_presplit = sized_kernel_call("gemm_presplit", ("a", "b", "bias"), SIZES, GemmCall.from_params,
                                  presplit_kernel.gemm, triton_kernel.allocate)
gemm_presplit_relu = sized_kernel_call("gemm_presplit_relu", ("a", "b", "bias"), SIZES, GemmCall.from_params,
                                       presplit_kernel.gemm_relu, triton_kernel.allocate)
gemm_b_parts = sized_kernel_call("gemm_b_parts", ("a", "b", "bias"), SIZES, GemmCall.from_params, b_parts_kernel.gemm,
                                 triton_kernel.allocate)
gemm_b_parts_relu = sized_kernel_call("gemm_b_parts_relu", ("a", "b", "bias"), SIZES, GemmCall.from_params,
                                      b_parts_kernel.gemm_relu, triton_kernel.allocate)


def _sizes(t: dict) -> dict:
    (m, k), n = t["a"].shape, t["b"].shape[1]
    return {"m": m, "n": n, "k": k}


describe_any_size = sized_describe(calls.describe, _sizes)
describe_relu_any_size = sized_describe(relu_calls.describe, _sizes)


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return overload_call(problem, describe_any_size, functools.partial(gemm_tiles, genome=genome), first_output)


SPLIT_TILES = GenomeSpace((  # the genes of both split-operand implementations
    ("BLOCK_M", (128, 64)),
    ("BLOCK_N", (128, 256, 64)),
    ("BLOCK_K", (32, 16, 64)),
    ("GROUP_M", (8, 1, 4)),
    ("num_warps", (8, 4)),
    ("num_stages", (3, 4, 2)),
))


def _split_builder(plain: Callable, relu: Callable) -> Callable:
    """The build of a split-operand implementation (genome in SPLIT_TILES): `relu` for kevolve::addmm_relu,
    `plain` for mm and addmm."""
    def build(problem: Problem, genome: Genome) -> Callable:
        SPLIT_TILES.validate(genome)
        if problem.op == str(relu_calls.ADDMM_RELU):
            return overload_call(problem, describe_relu_any_size, functools.partial(relu, genome=genome),
                                 first_output)
        return overload_call(problem, describe_any_size, functools.partial(plain, genome=genome), first_output)
    return build


def _supports_triton(problem: Problem, genome: Genome) -> str | None:
    """Half-precision operands run natively on tensor cores (the precision gene stays at its default); copying
    operands that are already K-major changes nothing; K is split only when the output tiles are too few to fill
    the SMs, and each split sums at least two K tiles; no block overruns its padded dimension (_overruns); the
    pipelined tiles must fit in shared memory and the accumulator in registers."""
    if problem.op == str(relu_calls.ADDMM_RELU):
        return "the ReLU epilogue runs in the split-operand kernels (gemm_tf32x3_presplit, gemm_tf32x3_b_parts)"
    dtype = problem.dtype("a")
    if dtype in HALF and genome["precision"] != TRITON.genome_space.default()["precision"]:
        return f"precision {genome['precision']} has no meaning for {dtype} operands"
    if genome["operands"] == "as_is" and (problem.param("a_layout"), problem.param("b_layout")) == ("row", "column"):
        return "both operands are K-major already"
    if genome["SPLIT_K"] > 1:
        tiles = -(-problem.dim("M") // genome["BLOCK_M"]) * -(-problem.dim("N") // genome["BLOCK_N"])
        if tiles >= SPLIT_BELOW_TILES:
            return f"{tiles} output tiles fill the SMs without splitting K"
        if -(-problem.dim("K") // genome["BLOCK_K"]) < 2 * genome["SPLIT_K"]:
            return f"K={problem.dim('K')} is too short for {genome['SPLIT_K']} splits of BLOCK_K={genome['BLOCK_K']}"
    tile_bytes = (genome["BLOCK_M"] + genome["BLOCK_N"]) * genome["BLOCK_K"] * dtype.itemsize
    return _overruns(TRITON, problem, genome) or _fits(genome, "a and b tiles", tile_bytes)


def _overruns(impl: Implementation, problem: Problem, genome: Genome) -> str | None:
    """Why BLOCK_M or BLOCK_N overruns M or N padded to a power of two (16 at least, or the gene's smallest
    choice): its extra rows or columns only add padding to a smaller tile's work; None if neither does."""
    choices = dict(impl.genome_space.choices)
    for block, dim in (("BLOCK_M", "M"), ("BLOCK_N", "N")):
        limit = max(16, triton.next_power_of_2(problem.dim(dim)), min(choices[block]))
        if genome[block] > limit:
            return f"{block}={genome[block]} overruns {dim}={problem.dim(dim)} (a {limit}-wide tile covers it)"
    return None


def _fits(genome: Genome, tiles: str, stage_bytes: int, accumulators: int = 1) -> str | None:
    """Why the genome's pipelined tiles (`stage_bytes` per stage) overflow shared memory or its `accumulators`
    [BLOCK_M, BLOCK_N] fp32 accumulators the registers; None when both fit."""
    staged = genome["num_stages"] * stage_bytes
    if staged > SHARED_MEMORY_BYTES:
        return f"{genome['num_stages']} stages of the {tiles} take {staged} bytes of shared memory"
    if accumulators * genome["BLOCK_M"] * genome["BLOCK_N"] > ACCUMULATOR_PER_THREAD * 32 * genome["num_warps"]:
        return (f"{accumulators} [BLOCK_M, BLOCK_N] accumulator(s) need over {ACCUMULATOR_PER_THREAD} registers "
                f"per thread")
    return None


TRITON = Implementation(
    name="gemm_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((
        ("BLOCK_M", (128, 64, 32, 16)),
        ("BLOCK_N", (128, 64, 256, 32, 16)),
        ("BLOCK_K", (32, 16, 64)),
        ("GROUP_M", (8, 1, 4)),
        ("num_warps", (8, 4)),
        ("num_stages", (3, 4, 2)),
        ("precision", ("tf32x3", "ieee")),
        ("operands", ("k_major", "as_is")),
        ("SPLIT_K", (4, 1, 2, 8, 16)),  # default 4 where it is allowed (few tiles, long K), else 1 (default_genome)
    )),
    build=_build_triton,
    supports=_supports_triton,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.triton_launch"),
)


def _supports_presplit(problem: Problem, genome: Genome) -> str | None:
    """fp32 operands only (half precision runs natively in gemm_triton); no block overruns its padded dimension
    (_overruns); the four pipelined part tiles must fit in shared memory and the two accumulators (the running
    sum, one K tile's products) in registers."""
    if problem.dtype("a") != torch.float32:
        return f"{problem.dtype('a')} operands need no tf32 parts"
    return (_overruns(PRESPLIT, problem, genome)
            or _fits(genome, "four part tiles", 2 * (genome["BLOCK_M"] + genome["BLOCK_N"]) * genome["BLOCK_K"] * 4, 2))


PRESPLIT = Implementation(
    name="gemm_tf32x3_presplit",
    abstraction=Abstraction.TRITON,
    genome_space=SPLIT_TILES,
    build=_split_builder(gemm_presplit, gemm_presplit_relu),
    supports=_supports_presplit,
    source_modules=(f"{PACKAGE}.presplit_kernel", f"{PACKAGE}.triton_kernel", f"{PACKAGE}.calls",
                    f"{PACKAGE}.relu_calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.triton_launch"),
)


def _supports_b_parts(problem: Problem, genome: Genome) -> str | None:
    """fp32 operands only; no block overruns its padded dimension (_overruns); the pipelined a tile and two b
    part tiles must fit in shared memory and the two accumulators in registers."""
    if problem.dtype("a") != torch.float32:
        return f"{problem.dtype('a')} operands need no tf32 parts"
    tile_bytes = (genome["BLOCK_M"] + 2 * genome["BLOCK_N"]) * genome["BLOCK_K"] * 4
    return _overruns(B_PARTS, problem, genome) or _fits(genome, "a tile and two b part tiles", tile_bytes, 2)


B_PARTS = Implementation(
    name="gemm_tf32x3_b_parts",
    abstraction=Abstraction.TRITON,
    genome_space=SPLIT_TILES,
    build=_split_builder(gemm_b_parts, gemm_b_parts_relu),
    supports=_supports_b_parts,
    source_modules=(f"{PACKAGE}.b_parts_kernel", f"{PACKAGE}.presplit_kernel", f"{PACKAGE}.triton_kernel",
                    f"{PACKAGE}.calls", f"{PACKAGE}.relu_calls", "torch_kevolve.families.custom_call",
                    "torch_kevolve.families.triton_launch"),
)
