"""The pointwise family's Triton implementation: genome space, builder, constraints.

The built callable takes every argument of the overload's schema positionally (kwarg-only ones
included, in schema order) and returns what the overload returns.
"""
from __future__ import annotations

from typing import Callable

import torch

from ...key import Problem
from ..base import Abstraction, Genome, GenomeSpace, Implementation, supports_all
from .calls import call_device, resolve_call
from .codegen import GENERATED_MODULE, generated_module
from .launcher import run_call
from .ops import encode_arguments
from .overloads import resolve

PACKAGE = __name__.rpartition(".")[0]


def _build_triton(problem: Problem, genome: Genome) -> Callable:
    """Functional calls on CPU go through the custom op (the interpreter, opaque to Inductor); GPU
    calls and in-place / out calls (eager only: post-grad graphs are functional) launch directly,
    so that on GPUs a traced graph holds the Triton kernel for Inductor's wrapper to launch."""
    TRITON.genome_space.validate(genome)
    name = problem.op.removeprefix("aten.")
    overload = resolve(name)

    def pointwise(*args):
        call = resolve_call(overload, args, {})
        tensors, arguments = encode_arguments(args)
        if call.destination is None and call_device(tensors).type == "cpu":
            return torch.ops.kevolve.pointwise(name, tensors, arguments, genome["BLOCK"], genome["num_warps"])
        return run_call(call, genome)

    return pointwise


generated_module()  # registers GENERATED_MODULE, so that source() can read it

TRITON = Implementation(
    name="pointwise_triton",
    abstraction=Abstraction.TRITON,
    genome_space=GenomeSpace((("BLOCK", (1024, 256, 512, 2048, 4096)), ("num_warps", (4, 1, 2, 8)))),
    build=_build_triton,
    supports=supports_all,
    # The generated module is codegen's output, so codegen's own text (file plumbing) is not hashed.
    source_modules=(GENERATED_MODULE, f"{PACKAGE}.formulas", f"{PACKAGE}.table", f"{PACKAGE}.calls",
                    f"{PACKAGE}.launcher", f"{PACKAGE}.ops", "torch_kevolve.families.triton_launch"),
)
