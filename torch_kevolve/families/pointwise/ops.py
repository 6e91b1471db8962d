"""`kevolve::pointwise`: a functional pointwise call as a custom op, so that on CPU a traced graph
holds one opaque node that runs the interpreted kernel (Inductor cannot trace into the interpreter).

The call travels as the overload's name, its tensors, and its other arguments as JSON in schema
order ({"tensor": i} marks the i-th tensor).
"""
from __future__ import annotations

import functools
import json

import torch
from torch import Tensor

from .calls import call_device, resolve_call
from .launcher import run_call
from .overloads import resolve


def encode_arguments(args) -> tuple[list[Tensor], str]:
    """(the tensors, the JSON of all arguments) for a call in schema order."""
    tensors, encoded = [], []
    for value in args:
        if isinstance(value, torch.Tensor):
            encoded.append({"tensor": len(tensors)})
            tensors.append(value)
        else:
            encoded.append({"value": value})
    return tensors, json.dumps(encoded)


@functools.lru_cache(maxsize=4096)
def _parsed(arguments: str) -> tuple:
    return tuple(json.loads(arguments))


def _decoded(tensors: list[Tensor], arguments: str) -> list:
    return [tensors[a["tensor"]] if "tensor" in a else a["value"] for a in _parsed(arguments)]


@torch.library.custom_op("kevolve::pointwise", mutates_args=())
def pointwise_op(overload: str, tensors: list[Tensor], arguments: str, BLOCK: int, num_warps: int) -> Tensor:
    call = resolve_call(resolve(overload), _decoded(tensors, arguments), {})
    return run_call(call, {"BLOCK": BLOCK, "num_warps": num_warps})


@pointwise_op.register_fake
def _(overload, tensors, arguments, BLOCK, num_warps):
    call = resolve_call(resolve(overload), _decoded(tensors, arguments), {})
    return torch.empty_strided(call.shape, call.stride, dtype=call.dtype, device=call_device(tensors))
