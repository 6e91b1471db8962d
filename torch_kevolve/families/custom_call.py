"""Launchers of Triton kernels as functional custom ops, so traced CPU graphs hold one opaque call.

On CPU the op runs the launcher (Triton's interpreter); on GPUs the launcher is called directly, so a
traced graph holds the Triton kernel itself (through `wrap_triton`) for Inductor to launch.
"""
from __future__ import annotations

import functools
import json
from typing import Callable, Optional, Sequence

import torch

Launcher = Callable[[Sequence[Optional[torch.Tensor]], dict], Sequence[torch.Tensor]]


@functools.lru_cache(maxsize=None)
def _parsed(params: str) -> dict:
    return json.loads(params)


def kernel_call(name: str, run: Launcher, allocate: Launcher) -> Launcher:
    """Register `kevolve::<name>` and return call(tensors, params) -> list of output tensors.

    `run(tensors, params)` computes the outputs; `allocate(tensors, params)` returns empty tensors of
    the same shapes, dtypes and strides (the op's fake). `params` must be JSON-serialisable.
    """

    @torch.library.custom_op(f"kevolve::{name}", mutates_args=())
    def op(tensors: list[Optional[torch.Tensor]], params: str) -> list[torch.Tensor]:
        return list(run(tensors, _parsed(params)))

    @op.register_fake
    def _(tensors, params):
        return list(allocate(tensors, _parsed(params)))

    def call(tensors: Sequence[Optional[torch.Tensor]], params: dict) -> list[torch.Tensor]:
        device = next(t.device for t in tensors if t is not None)
        if device.type == "cpu":
            return op(list(tensors), json.dumps(params, sort_keys=True))
        return list(run(tensors, params))

    return call


def named_kernel_call(name: str, tensor_names: Sequence[str], call_from_params: Callable, run: Callable,
                      allocate: Callable) -> Callable:
    """`kernel_call` for launchers that take (tensors by name, call, genome); returns
    compute(tensors by name, call, genome) -> outputs. `call` has params() / call_from_params(dict)."""

    def run_listed(tensors, params: dict):
        return run(dict(zip(tensor_names, tensors)), call_from_params(params["call"]), params["genome"])

    def allocate_listed(tensors, params: dict):
        return allocate(dict(zip(tensor_names, tensors)), call_from_params(params["call"]))

    call_op = kernel_call(name, run_listed, allocate_listed)

    def compute(tensors: dict, call, genome: dict) -> list[torch.Tensor]:
        return call_op([tensors.get(n) for n in tensor_names], {"call": call.params(), "genome": genome})

    return compute
