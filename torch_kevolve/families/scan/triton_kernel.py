"""Triton cumulative sum / product along rows of the [outer, length, inner] view: one program scans
BLOCK_M rows in BLOCK_N steps, carrying each row's running total from step to step. Accumulates in
fp32 (fp64 for fp64 ends, int64 for integer outputs)."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..softmax.triton_kernel import _row_offsets
from ..triton_launch import launch
from .calls import ScanCall

GENOME_CONSTEXPRS = ("BLOCK_M", "BLOCK_N")


@triton.jit
def _multiply(a, b):
    return a * b


@triton.jit
def scan_kernel(
    x_ptr,  # [outer, length, inner] contiguous
    out_ptr,  # like x: out[..., k, ...] combines x[..., 0..k, ...]
    rows,  # outer * inner
    length,
    inner,
    PROD: tl.constexpr,  # product instead of sum
    ACC: tl.constexpr,  # fp32 | fp64 | int64
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    base, row_mask = _row_offsets(rows, length, inner, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    acc_type = tl.float64 if ACC == "fp64" else tl.int64 if ACC == "int64" else tl.float32
    if PROD:
        carry = tl.full([BLOCK_M], 1, dtype=acc_type)
    else:
        carry = tl.zeros([BLOCK_M], dtype=acc_type)
    for start in range(0, length, BLOCK_N):
        col = start + cols
        mask = row_mask[:, None] & (col < length)[None, :]
        offs = base[:, None] + col.to(tl.int64)[None, :] * inner
        x = tl.load(x_ptr + offs, mask=mask, other=0).to(acc_type)
        if PROD:
            x = tl.where(mask, x, 1)
            tile = tl.cumprod(x, axis=1) * carry[:, None]
            carry = carry * tl.reduce(x, 1, _multiply)
        else:
            tile = tl.cumsum(x, axis=1) + carry[:, None]
            # The running total is the scan's last column (masked elements load as 0). `carry + tl.sum(x)`
            # fails to compile for sm_90 on Triton 3.6 with fp32 and 16-divisible lengths (an assertion in
            # OptimizeThreadLocality: a loop result with two uses).
            carry = tl.sum(tl.where(cols[None, :] == BLOCK_N - 1, tile, 0), axis=1)
        tl.store(out_ptr + offs, tile.to(out_ptr.dtype.element_ty), mask=mask)


def accumulator(x_dtype: torch.dtype, out_dtype: torch.dtype) -> str:
    if torch.float64 in (x_dtype, out_dtype):
        return "fp64"
    return "fp32" if out_dtype.is_floating_point else "int64"


def allocate(x: torch.Tensor, call: ScanCall) -> list[torch.Tensor]:
    return [torch.empty(x.shape, dtype=call.out_dtype, device=x.device)]


def scan(tensors, call: ScanCall, genome: dict) -> list[torch.Tensor]:
    """The call's output, computed by scan_kernel."""
    (x,) = tensors
    (out,) = allocate(x, call)
    launch(
        scan_kernel,
        (triton.cdiv(call.outer * call.inner, genome["BLOCK_M"]),),
        x.contiguous(),
        out,
        call.outer * call.inner,
        call.length,
        call.inner,
        PROD=call.combine == "prod",
        ACC=accumulator(x.dtype, call.out_dtype),
        num_warps=genome["num_warps"],
        num_stages=genome["num_stages"],
        **{name: genome[name] for name in GENOME_CONSTEXPRS},
    )
    return [out]
