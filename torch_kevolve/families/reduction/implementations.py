"""The implementations of the reduction family: the Triton kernel (through a custom op on CPU) and
the pairwise-fold decomposition. Each built callable takes the overload's arguments."""
from __future__ import annotations

import functools
from typing import Callable

import torch

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation
from ..custom_call import kernel_call
from ..row_tiles import ROW_TILES, tiles_fit
from ..schema import bind_arguments, overload_named, with_keyword_only
from . import decomposition, triton_kernel
from .spec import ReductionCall, describe

PACKAGE = __name__.rpartition(".")[0]


def remembered_arguments(problem: Problem) -> dict:
    """The keyword-only arguments a problem remembers (rewritten nodes pass positional ones only)."""
    return dict(dtype=problem.dtype("out"), keepdim=problem.param("keepdim"), correction=problem.param("correction"))


def _run_triton(tensors, params: dict) -> list[torch.Tensor]:
    return triton_kernel.reduce(tensors[0], ReductionCall.from_params(params["call"]), params["genome"])


def _allocate(tensors, params: dict) -> list[torch.Tensor]:
    return triton_kernel.allocate(tensors[0], ReductionCall.from_params(params["call"]))


reduce_rows = kernel_call("reduce_rows", _run_triton, _allocate)


def _reduction_call(problem: Problem, compute: Callable) -> Callable:
    """The overload's signature around compute(x, ReductionCall) -> list of outputs."""
    overload = overload_named(problem.op)
    remembered = remembered_arguments(problem)

    def reduction(*args, **kwargs):
        kwargs = with_keyword_only(overload, kwargs, remembered)
        outs = compute(bind_arguments(overload, args, kwargs)["self"], describe(overload, args, kwargs))
        return tuple(outs) if len(outs) > 1 else outs[0]

    return reduction


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    TRITON.genome_space.validate(genome)
    return _reduction_call(problem, lambda x, call: reduce_rows([x], {"call": call.params(), "genome": genome}))


def _build_decomposition(problem: Problem, genome: Genome) -> Callable:
    DECOMPOSITION.genome_space.validate(genome)
    return _reduction_call(problem, functools.partial(decomposition.reduce, fold=genome["fold"]))


def _supports_triton(problem: Problem, genome: Genome) -> str | None:
    """Row tiles that fit, and an explicit SPLIT only where each chunk holds a tile and no whole-row center is
    needed (SPLIT 0 and 1 run every problem)."""
    split, block_n = genome["SPLIT"], genome["BLOCK_N"]
    reason = tiles_fit(problem, genome)
    if reason is not None or split <= 1:
        return reason
    if problem.param("center") != "none":
        return f"SPLIT={split}: var, std and logsumexp center each element on a statistic of the whole row"
    if problem.dim("row_length") < split * block_n:
        return f"SPLIT={split}: rows of {problem.dim('row_length')} hold fewer than {split} tiles of {block_n}"
    return None


def _supports_decomposition(problem: Problem, genome: Genome) -> str | None:
    if genome["fold"] == "matmul":
        if (problem.param("combine"), problem.param("center"), problem.param("accumulator")) not in (
                ("sum", "none", "fp32"), ("sum", "none", "fp64")):
            return "matmul folds floating-point sums only"
    return None


TRITON = Implementation(
    name="reduction_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace(ROW_TILES.choices + (("SPLIT", triton_kernel.SPLITS),)),
    build=_build_triton,
    supports=_supports_triton,
    source_modules=(f"{PACKAGE}.triton_kernel", f"{PACKAGE}.spec", "torch_kevolve.families.dims",
                    "torch_kevolve.families.custom_call", "torch_kevolve.families.row_tiles",
                    "torch_kevolve.families.triton_launch"),
)

DECOMPOSITION = Implementation(
    name="reduction_decomposition",
    abstraction=Abstraction.DECOMPOSITION,
    genome_space=GenomeSpace((("fold", decomposition.FOLDS),)),
    build=_build_decomposition,
    supports=_supports_decomposition,
    source_modules=(f"{PACKAGE}.decomposition", f"{PACKAGE}.spec", "torch_kevolve.families.dims"),
)
