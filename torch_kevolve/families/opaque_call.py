"""Launchers that Inductor never sees: a `named_kernel_call` op (registered with `unwrapped(run)`) called through
`opaque_compute` on every device, so a traced GPU graph holds one opaque node and Inductor neither launches
nor analyses the kernels. Inside the op the kernels are launched straight through Triton (no wrap_triton
tracing hooks: nothing is being traced there).

For kernels that gather, by indices they load, from memory they also write: Inductor's TTIR analysis of
user-defined kernels then reports the index tensors as written (logs/interaction-inductor-analysis-cpu.log),
and its graph treats them as mutated outputs. On the H200 the interaction's scratch-slot kernels in an
Inductor graph corrupted their pair indices; launched eagerly or through the op they were exact
(benchmarks/results/logs/interaction-debug-h200.log).
"""
from __future__ import annotations

import functools
import json
from typing import Callable, Sequence

import torch
from torch._library.triton import set_wrap_triton_enabled


def unwrapped(run: Callable) -> Callable:
    """`run` with wrap_triton's tracing hooks off: inside an opaque op nothing is traced."""

    @functools.wraps(run)
    def run_directly(*args, **kwargs):
        with set_wrap_triton_enabled(False):
            return run(*args, **kwargs)

    return run_directly


@torch.compiler.assume_constant_result
def _params(call: dict, genome: dict) -> str:
    """The op's params string; a constant to Dynamo, which cannot trace json and would break the graph there."""
    return json.dumps({"call": call, "genome": genome}, sort_keys=True)


def opaque_compute(op, tensor_names: Sequence[str]) -> Callable:
    """compute(tensors by name, call, genome) -> outputs through `op`, a `named_kernel_call` op registered with
    `unwrapped(run)`, on every device."""

    def compute(tensors: dict, call, genome: dict) -> list[torch.Tensor]:
        return op([tensors.get(n) for n in tensor_names], _params(call.params(), genome))

    return compute
