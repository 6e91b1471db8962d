"""Triton kernels of the factorization-machine interaction out = X (Xᵀ Y); one program per sample, which reads
the sample's [N, D] features once, BLOCK_D columns at a time, and keeps every intermediate in registers.

project: out = Σ over column blocks x (xᵀ Y): the block's [BLOCK_D, K] slice of Xᵀ Y never leaves the chip.
         backward: per block, M = xᵀY and P = xᵀG give dX's columns G Mᵀ + Y Pᵀ, and dY += x P.
gram:    out = (X Xᵀ) Y with the [N, N] gram summed over the column blocks (fewer flops when N < 2 K D / (D + K)).
         backward: dX = (G Yᵀ + Y Gᵀ) X per column block, dY = (X Xᵀ) G.
A shared [N, K] projection's gradient is each sample's [N, K] term in fp32 (no atomics: deterministic), then
their sum over the batch. Half-precision operands are exact in tf32, so their matmuls run on tensor cores
(tf32); fp32 matmuls use IEEE fp32.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import FMCall

MAX_ROWS = 128  # the [N, N] gram and the [N, K] tiles live in registers
MAX_K = 64
MAX_TILE = 128 * 128  # elements of one [N, BLOCK_D] tile of features
TILE_MIN = 16  # tl.dot's smallest tile side


@triton.jit
def _tile(base, r, c, rows, cols):
    """The [BLOCK_R, BLOCK_C] tile (r, c) of a contiguous [rows, cols] matrix at `base`, in fp32 (0 outside)."""
    mask = (r < rows)[:, None] & (c < cols)[None, :]
    return tl.load(base + r[:, None] * cols + c[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _store_tile(base, value, r, c, rows, cols):
    """Store `value` at tile (r, c) of a contiguous [rows, cols] matrix, in its element type."""
    mask = (r < rows)[:, None] & (c < cols)[None, :]
    tl.store(base + r[:, None] * cols + c[None, :], value.to(base.dtype.element_ty), mask=mask)


@triton.jit
def fm_forward_kernel(
    x_ptr,  # [batch, rows, dim] contiguous features
    y_ptr,  # [rows, k] shared or [batch, rows, k] contiguous projection
    out_ptr,  # [batch, rows, k] contiguous
    rows,
    dim,
    k,
    y_batch_stride,  # 0 for a shared projection, rows * k otherwise
    GRAM: tl.constexpr,  # (X Xᵀ) Y instead of X (Xᵀ Y)
    PRECISION: tl.constexpr,  # "tf32" for half inputs (exact), "ieee" for fp32
    BLOCK_N: tl.constexpr,  # rows padded to a power of two >= 16
    BLOCK_K: tl.constexpr,  # k padded likewise
    BLOCK_D: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    n = tl.arange(0, BLOCK_N)
    c = tl.arange(0, BLOCK_K)
    x_base = x_ptr + b * rows * dim
    y = _tile(y_ptr + b * y_batch_stride, n, c, rows, k)
    if GRAM:
        gram = tl.zeros([BLOCK_N, BLOCK_N], dtype=tl.float32)
        for d0 in range(0, dim, BLOCK_D):
            x = _tile(x_base, n, d0 + tl.arange(0, BLOCK_D), rows, dim)
            gram += tl.dot(x, tl.trans(x), input_precision=PRECISION)
        out = tl.dot(gram, y, input_precision=PRECISION)
    else:
        out = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.float32)
        for d0 in range(0, dim, BLOCK_D):
            x = _tile(x_base, n, d0 + tl.arange(0, BLOCK_D), rows, dim)
            slab = tl.dot(tl.trans(x), y, input_precision=PRECISION)  # [BLOCK_D, BLOCK_K] rows of Xᵀ Y
            out += tl.dot(x, slab, input_precision=PRECISION)
    _store_tile(out_ptr + b * rows * k, out, n, c, rows, k)


@triton.jit
def fm_backward_kernel(
    grad_ptr,  # [batch, rows, k] contiguous gradient of the output
    x_ptr,  # [batch, rows, dim] contiguous features
    y_ptr,  # [rows, k] or [batch, rows, k] contiguous projection
    grad_x_ptr,  # [batch, rows, dim] contiguous
    grad_y_ptr,  # [batch, rows, k] contiguous: each sample's term (fp32 when the projection is shared)
    rows,
    dim,
    k,
    y_batch_stride,
    GRAM: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    n = tl.arange(0, BLOCK_N)
    c = tl.arange(0, BLOCK_K)
    x_base = x_ptr + b * rows * dim
    grad_x_base = grad_x_ptr + b * rows * dim
    y = _tile(y_ptr + b * y_batch_stride, n, c, rows, k)
    g = _tile(grad_ptr + b * rows * k, n, c, rows, k)
    if GRAM:
        weights = (tl.dot(g, tl.trans(y), input_precision=PRECISION)
                   + tl.dot(y, tl.trans(g), input_precision=PRECISION))  # [BLOCK_N, BLOCK_N]: dX = W X
        gram = tl.zeros([BLOCK_N, BLOCK_N], dtype=tl.float32)
        for d0 in range(0, dim, BLOCK_D):
            d = d0 + tl.arange(0, BLOCK_D)
            x = _tile(x_base, n, d, rows, dim)
            gram += tl.dot(x, tl.trans(x), input_precision=PRECISION)
            _store_tile(grad_x_base, tl.dot(weights, x, input_precision=PRECISION), n, d, rows, dim)
        grad_y = tl.dot(gram, g, input_precision=PRECISION)
    else:
        grad_y = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.float32)
        for d0 in range(0, dim, BLOCK_D):
            d = d0 + tl.arange(0, BLOCK_D)
            x = _tile(x_base, n, d, rows, dim)
            slab = tl.dot(tl.trans(x), y, input_precision=PRECISION)  # [BLOCK_D, BLOCK_K] of Xᵀ Y
            spread = tl.dot(tl.trans(x), g, input_precision=PRECISION)  # [BLOCK_D, BLOCK_K] of Xᵀ G
            grad_x = (tl.dot(g, tl.trans(slab), input_precision=PRECISION)
                      + tl.dot(y, tl.trans(spread), input_precision=PRECISION))
            _store_tile(grad_x_base, grad_x, n, d, rows, dim)
            grad_y += tl.dot(x, spread, input_precision=PRECISION)
    _store_tile(grad_y_ptr + b * rows * k, grad_y, n, c, rows, k)


def padded(extent: int) -> int:
    """A tile side covering `extent` that tl.dot accepts."""
    return max(TILE_MIN, triton.next_power_of_2(extent))


def allocate(t: dict, call: FMCall) -> list[torch.Tensor]:
    device = t["features"].device
    if not call.backward:
        return [torch.empty(call.batch, call.rows, call.k, dtype=call.dtype, device=device)]
    projection_shape = (call.rows, call.k) if call.shared else (call.batch, call.rows, call.k)
    return [torch.empty(call.batch, call.rows, call.dim, dtype=call.dtype, device=device),
            torch.empty(projection_shape, dtype=call.dtype, device=device)]


def fm_interaction(t: dict, call: FMCall, genome: dict) -> list[torch.Tensor]:
    """The call's outputs, computed by the kernels."""
    outputs = allocate(t, call)
    x, y = t["features"].contiguous(), t["projection"].contiguous()
    sizes = (call.rows, call.dim, call.k, 0 if call.shared else call.rows * call.k)
    options = dict(GRAM=genome["algorithm"] == "gram", PRECISION="ieee" if call.dtype == torch.float32 else "tf32",
                   BLOCK_N=padded(call.rows), BLOCK_K=padded(call.k), BLOCK_D=genome["BLOCK_D"],
                   num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    if not call.backward:
        launch(fm_forward_kernel, (call.batch,), x, y, *outputs, *sizes, **options)
        return outputs
    grad_x, grad_y = outputs
    terms = torch.empty(call.batch, call.rows, call.k, dtype=torch.float32, device=x.device) if call.shared else grad_y
    launch(fm_backward_kernel, (call.batch,), t["grad"].contiguous(), x, y, grad_x, terms, *sizes, **options)
    if call.shared:
        grad_y.copy_(terms.sum(0))
    return outputs
