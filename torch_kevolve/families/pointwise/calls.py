"""The pointwise calls the family accepts: operands in expression order, compute dtype, output."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import torch
from torch._prims_common import ELEMENTWISE_TYPE_PROMOTION_KIND

from ..base import Unsupported
from ..schema import bind_arguments
from .overloads import OP_OF_OVERLOAD
from .table import ALWAYS_BOOL, ANY, BOOL, FLOAT, INT_TO_FLOAT, INTEGRAL, NUMERIC, PointwiseOp

INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
# Tensor dtypes the kernels read and write; float64 is left to Inductor (its 1e-12 tolerance is
# beyond the fp32 formulas), complex and the unsigned wide types have no kernels.
TENSOR_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.bool) + INTEGER_DTYPES
COMPUTE_DTYPES = {
    FLOAT: (torch.float32,),
    NUMERIC: (torch.float32,) + INTEGER_DTYPES,
    INTEGRAL: INTEGER_DTYPES + (torch.bool,),
    ANY: (torch.float32, torch.bool) + INTEGER_DTYPES,
}
PROMOTION_KINDS = {
    "default": ELEMENTWISE_TYPE_PROMOTION_KIND.DEFAULT,
    INT_TO_FLOAT: ELEMENTWISE_TYPE_PROMOTION_KIND.INT_TO_FLOAT,
    ALWAYS_BOOL: ELEMENTWISE_TYPE_PROMOTION_KIND.ALWAYS_BOOL,
}
MAX_RANK = 6


@dataclass(frozen=True)
class PointwiseCall:
    """One call resolved: `operands` are tensors or numbers in the row's order (encodings and
    unbounded limits applied); the output has `shape`, `stride`, `dtype` and is written into
    `destination` (self for in-place, out for out variants) or a new tensor when that is None."""

    op: PointwiseOp
    operands: tuple
    compute: torch.dtype
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype
    destination: torch.Tensor | None


def destination_argument(overload: torch._ops.OpOverload) -> str | None:
    """The argument an in-place or out overload writes (self, out, grad_input), or None."""
    written = [a.name for a in overload._schema.arguments if a.alias_info is not None and a.alias_info.is_write]
    return written[0] if written else None


def _check_tensor(name: str, t: torch.Tensor) -> None:
    if t.layout != torch.strided:
        raise Unsupported(f"{name}: layout {t.layout} (only strided tensors)")
    if t.is_complex():
        raise Unsupported(f"{name}: complex dtype {t.dtype}")
    if t.dtype not in TENSOR_DTYPES:
        raise Unsupported(f"{name}: dtype {t.dtype} has no pointwise kernel")
    if not all(isinstance(s, int) for s in tuple(t.shape) + tuple(t.stride())):
        raise Unsupported(f"{name}: symbolic shape {tuple(t.shape)}")


def _check_scalar(name: str, value) -> None:
    if not isinstance(value, (bool, int, float)):
        raise Unsupported(f"{name}: {type(value).__name__} argument {value!r}")


def _signature(value):
    """A hashable stand-in for an argument: tensors by shape, strides and dtype, the rest by value."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), tuple(value.stride()), value.dtype)
    return ("value", value)


def _meta(signature):
    if signature[0] == "tensor":
        _, shape, stride, dtype = signature
        return torch.empty_strided(shape, stride, dtype=dtype, device="meta")
    return signature[1]


@functools.lru_cache(maxsize=4096)
def _output_layout(overload, signatures: tuple) -> tuple:
    """(shape, stride, dtype) of what ATen's meta kernel returns for the call; Unsupported if ATen refuses it."""
    arguments = overload._schema.arguments
    values = dict(zip((a.name for a in arguments), (_meta(s) for s in signatures)))
    # Arguments with defaults go by keyword: some meta decompositions take them keyword-only.
    positional = [values[a.name] for a in arguments if not a.kwarg_only and not a.has_default_value()]
    keywords = {a.name: values[a.name] for a in arguments if a.kwarg_only or a.has_default_value()}
    try:
        output = overload(*positional, **keywords)
    except Exception as e:
        raise Unsupported(f"ATen refuses the call: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    return tuple(output.shape), tuple(output.stride()), output.dtype


def _limit(dtype: torch.dtype, which: str):
    if dtype.is_floating_point:
        return float("-inf") if which == "lowest" else float("inf")
    info = torch.iinfo(dtype)
    return info.min if which == "lowest" else info.max


def _compute_dtype(op: PointwiseOp, values: dict) -> torch.dtype:
    if op.promotion == BOOL:
        return torch.bool
    promoting = [values[n] for n in op.promoting_operands() if values[n] is not None]
    if not any(isinstance(v, torch.Tensor) for v in promoting):
        raise Unsupported("no tensor operand decides the dtype")
    compute, _ = torch._prims_common.elementwise_dtypes(*promoting, type_promotion_kind=PROMOTION_KINDS[op.promotion])
    if compute in (torch.float16, torch.bfloat16):
        compute = torch.float32
    if compute not in COMPUTE_DTYPES[op.domain]:
        raise Unsupported(f"{op.name} does not compute in {compute} (accepts {op.domain} dtypes)")
    return compute


def call_device(tensors: Sequence[torch.Tensor]) -> torch.device:
    """The device of the call: that of its dimensioned tensors (0-d CPU tensors may join any device)."""
    devices = {t.device for t in tensors if t.dim() > 0 or t.device.type != "cpu"}
    if len(devices) > 1:
        raise Unsupported(f"tensors on several devices: {sorted(map(str, devices))}")
    return devices.pop() if devices else torch.device("cpu")


def resolve_call(overload: torch._ops.OpOverload, args: Sequence, kwargs: dict) -> PointwiseCall:
    """The resolved call; Unsupported (with the reason) when it is outside the family."""
    op = OP_OF_OVERLOAD.get(overload)
    if op is None:
        raise Unsupported(f"{overload} is not a pointwise overload")
    bound = bind_arguments(overload, args, kwargs)
    written = destination_argument(overload)
    encodings = {name: dict(codes) for name, codes in op.encodings}
    values = {}
    for name in op.operands:
        value = bound[name]
        if name in encodings:
            if value not in encodings[name]:
                raise Unsupported(f"{name}={value!r} is not one of {sorted(encodings[name])}")
            value = encodings[name][value]
        if isinstance(value, torch.Tensor):
            _check_tensor(name, value)
        elif value is not None:
            _check_scalar(name, value)
        elif name not in dict(op.unbounded):
            raise Unsupported(f"{name} is None")
        values[name] = value
    destination = bound[written] if written else None
    tensors = [v for v in values.values() if isinstance(v, torch.Tensor)]
    if destination is not None:
        _check_tensor(written, destination)
        tensors.append(destination)
    call_device(tensors)
    compute = _compute_dtype(op, values)
    shape, stride, dtype = _output_layout(overload, tuple(_signature(bound[a.name]) for a in overload._schema.arguments))
    if dtype not in TENSOR_DTYPES:
        raise Unsupported(f"output dtype {dtype} has no pointwise kernel")
    if destination is not None and tuple(destination.shape) != shape:
        raise Unsupported(f"{written} has shape {tuple(destination.shape)}, the result {shape}")
    if sum(s != 1 for s in shape) > MAX_RANK:
        raise Unsupported(f"output rank {len(shape)} beyond {MAX_RANK} non-trivial dims")
    for name, which in op.unbounded:
        if values[name] is None:
            values[name] = _limit(compute, which)
    return PointwiseCall(op, tuple(values[n] for n in op.operands), compute, shape, stride, dtype, destination)
