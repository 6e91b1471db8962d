"""Launch of a generated pointwise kernel for one resolved call."""
from __future__ import annotations

import torch
import triton

from ..triton_launch import launch
from . import formulas
from .calls import MAX_RANK, PointwiseCall, call_device
from .codegen import kernel

COMPUTE_CODES = {
    torch.float32: formulas.FLOAT32,
    torch.int64: formulas.INT64,
    torch.int32: formulas.INT32,
    torch.int16: formulas.INT16,
    torch.int8: formulas.INT8,
    torch.uint8: formulas.UINT8,
    torch.bool: formulas.BOOL,
}


TENSOR, ONE_ELEMENT, NUMBER = 0, 1, 2  # how the kernel reads an operand (its *_KIND flag)


def _operand(value, compute: torch.dtype, device: torch.device):
    """A tensor operand on `device` (0-d CPU tensors move); numbers stay numbers (kernel arguments),
    except for boolean computations, where they become one-element tensors (the interpreter cannot
    mix Python numbers with boolean blocks)."""
    if isinstance(value, torch.Tensor):
        return value.to(device) if value.device != device else value
    return torch.full((), value, dtype=compute, device=device) if compute == torch.bool else value


def _kind(operand) -> int:
    if not isinstance(operand, torch.Tensor):
        return NUMBER
    return ONE_ELEMENT if operand.numel() == 1 else TENSOR


def run_call(call: PointwiseCall, genome: dict) -> torch.Tensor:
    """Compute `call` with its generated kernel; return the tensor written (new, self or out)."""
    tensors = [v for v in call.operands if isinstance(v, torch.Tensor)]
    device = call_device(tensors + ([call.destination] if call.destination is not None else []))
    out = call.destination
    if out is None:
        out = torch.empty_strided(call.shape, call.stride, dtype=call.dtype, device=device)
    operands = [_operand(v, call.compute, device) for v in call.operands]
    numel = out.numel()
    if numel == 0:
        return out
    dims = [d for d in reversed(range(out.dim())) if out.shape[d] != 1]
    kinds = [_kind(t) for t in operands]
    contiguous = out.is_contiguous() and all(
        k != TENSOR or (t.shape == out.shape and t.is_contiguous()) for t, k in zip(operands, kinds))
    sizes = [out.shape[d] for d in dims] + [1] * (MAX_RANK - len(dims))
    strides = []
    for t, k in zip([out] + operands, [TENSOR] + kinds):
        expanded = t.expand(out.shape) if k == TENSOR else None
        strides += [expanded.stride(d) if k == TENSOR else 0 for d in dims] + [0] * (MAX_RANK - len(dims))
    flags = {f"{chr(ord('A') + i)}_KIND": k for i, k in enumerate(kinds)}
    block = genome["BLOCK"]
    launch(kernel(call.op), (triton.cdiv(numel, block),), out, *operands, numel, *sizes, *strides,
           RANK=len(dims), CONTIGUOUS=contiguous, COMPUTE=COMPUTE_CODES[call.compute],
           LIBDEVICE=device.type != "cpu", BLOCK=block, num_warps=genome["num_warps"], **flags)
    return out
