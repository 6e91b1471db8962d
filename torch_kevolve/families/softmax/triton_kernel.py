"""Triton softmax / log-softmax, forward and backward, over rows along any dim.

One program takes BLOCK_M rows of the [outer, length, inner] view (calls.py) and walks them in
BLOCK_N steps, twice: forward finds each row's max and sum of exponentials in one online pass, then
writes; backward sums grad * output (grad for log-softmax), then writes. Arithmetic in fp32 (fp64 for fp64).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import SoftmaxCall

GENOME_CONSTEXPRS = ("BLOCK_M", "BLOCK_N")


@triton.jit
def _row_offsets(rows, length, inner, BLOCK_M: tl.constexpr):
    """(offset of each row's first element, row mask) of this program's BLOCK_M rows."""
    row = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    base = (row // inner).to(tl.int64) * length * inner + row % inner
    return base, row < rows


@triton.jit
def softmax_forward_kernel(
    x_ptr,  # [outer, length, inner] contiguous
    out_ptr,  # like x, the (log-)softmax along length
    rows,  # outer * inner
    length,
    inner,
    LOG: tl.constexpr,
    SAFE: tl.constexpr,  # rows of -inf give 0 (ATen's _safe_softmax), not NaN
    FP64: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    base, row_mask = _row_offsets(rows, length, inner, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    acc_type = tl.float64 if FP64 else tl.float32
    m = tl.full([BLOCK_M], float("-inf"), dtype=acc_type)
    s = tl.zeros([BLOCK_M], dtype=acc_type)
    for start in range(0, length, BLOCK_N):
        col = start + cols
        mask = row_mask[:, None] & (col < length)[None, :]
        offs = base[:, None] + col.to(tl.int64)[None, :] * inner
        x = tl.load(x_ptr + offs, mask=mask, other=float("-inf")).to(acc_type)
        m_new = tl.maximum(m, tl.max(x, axis=1))
        # Rescale the running sum to the new max; -inf terms (and masked ones) add nothing.
        s = s * tl.where(m == m_new, 1.0, tl.exp(m - m_new)) + tl.sum(
            tl.where(x == float("-inf"), 0.0, tl.exp(x - m_new[:, None])), axis=1)
        m = m_new
    for start in range(0, length, BLOCK_N):
        col = start + cols
        mask = row_mask[:, None] & (col < length)[None, :]
        offs = base[:, None] + col.to(tl.int64)[None, :] * inner
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(acc_type)
        if LOG:
            y = x - m[:, None] - tl.log(s)[:, None]
        else:
            y = tl.exp(x - m[:, None]) / s[:, None]
        if SAFE:
            y = tl.where(m[:, None] == float("-inf"), 0.0, y)
        tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def softmax_backward_kernel(
    grad_ptr,  # [outer, length, inner] contiguous gradient of the output
    y_ptr,  # like grad, the forward's output
    out_ptr,  # like grad, the gradient of the input
    rows,
    length,
    inner,
    LOG: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    base, row_mask = _row_offsets(rows, length, inner, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    acc_type = tl.float64 if FP64 else tl.float32
    # softmax: dx = y * (g - sum(g * y)); log_softmax: dx = g - exp(y) * sum(g)
    total = tl.zeros([BLOCK_M], dtype=acc_type)
    for start in range(0, length, BLOCK_N):
        col = start + cols
        mask = row_mask[:, None] & (col < length)[None, :]
        offs = base[:, None] + col.to(tl.int64)[None, :] * inner
        g = tl.load(grad_ptr + offs, mask=mask, other=0.0).to(acc_type)
        if LOG:
            total += tl.sum(g, axis=1)
        else:
            total += tl.sum(g * tl.load(y_ptr + offs, mask=mask, other=0.0).to(acc_type), axis=1)
    for start in range(0, length, BLOCK_N):
        col = start + cols
        mask = row_mask[:, None] & (col < length)[None, :]
        offs = base[:, None] + col.to(tl.int64)[None, :] * inner
        g = tl.load(grad_ptr + offs, mask=mask, other=0.0).to(acc_type)
        y = tl.load(y_ptr + offs, mask=mask, other=0.0).to(acc_type)
        if LOG:
            dx = g - tl.exp(y) * total[:, None]
        else:
            dx = y * (g - total[:, None])
        tl.store(out_ptr + offs, dx.to(out_ptr.dtype.element_ty), mask=mask)


def allocate(first: torch.Tensor, call: SoftmaxCall) -> list[torch.Tensor]:
    return [torch.empty(first.shape, dtype=call.out_dtype, device=first.device)]


def softmax(tensors, call: SoftmaxCall, genome: dict) -> list[torch.Tensor]:
    """The call's output (forward: tensors = (x,); backward: (grad_output, output)), by the kernels."""
    (out,) = allocate(tensors[0], call)
    inputs = [t.contiguous() for t in tensors]
    kernel = softmax_backward_kernel if call.backward else softmax_forward_kernel
    forward_only = {} if call.backward else {"SAFE": call.safe}
    rows = call.outer * call.inner
    fp64 = torch.float64 in [t.dtype for t in tensors] + [call.out_dtype]
    launch(
        kernel,
        (triton.cdiv(rows, genome["BLOCK_M"]),),
        *inputs,
        out,
        rows,
        call.length,
        call.inner,
        LOG=call.log,
        FP64=fp64,
        **forward_only,
        num_warps=genome["num_warps"],
        num_stages=genome["num_stages"],
        **{name: genome[name] for name in GENOME_CONSTEXPRS},
    )
    return [out]
