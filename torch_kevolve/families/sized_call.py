"""`named_kernel_call` for calls whose sizes may vary from batch to batch (symbolic sizes under dynamic shapes).

A kernel_call op (the CPU path: Triton's interpreter, opaque to Inductor) takes its call as one JSON text, a
constant of the traced graph, which cannot hold a symbolic size. The sizes named here travel instead as the shapes
of empty [size, 0] tensors after the call's tensors; the op and its fake read them back, so a traced CPU graph
computes them at run time. On GPUs the launcher is called with the call itself, as kernel_call does.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from .custom_call import kernel_call


def sized_kernel_call(name: str, tensor_names: Sequence[str], sizes: Sequence[str], call_from_params: Callable,
                      run: Callable, allocate: Callable) -> Callable:
    """`named_kernel_call(name, tensor_names, call_from_params, run, allocate)` whose call's fields `sizes` (ints
    of `call.params()`) may be symbolic; returns compute(tensors by name, call, genome) -> outputs."""
    count = len(tensor_names)

    def restored(tensors, params: dict) -> tuple[dict, object]:
        carried = {size: carrier.shape[0] for size, carrier in zip(sizes, tensors[count:])}
        return dict(zip(tensor_names, tensors[:count])), call_from_params({**params["call"], **carried})

    def run_listed(tensors, params: dict):
        named, call = restored(tensors, params)
        return run(named, call, params["genome"])

    def allocate_listed(tensors, params: dict):
        return allocate(*restored(tensors, params))

    call_op = kernel_call(name, run_listed, allocate_listed)

    def compute(tensors: dict, call, genome: dict) -> list[torch.Tensor]:
        device = next(t.device for t in tensors.values() if t is not None)
        listed = [tensors.get(n) for n in tensor_names]
        if device.type != "cpu":
            return run(dict(zip(tensor_names, listed)), call, genome)
        fields = call.params()
        carriers = [torch.empty(fields.pop(size), 0) for size in sizes]
        return call_op([*listed, *carriers], {"call": fields, "genome": genome})

    return compute
