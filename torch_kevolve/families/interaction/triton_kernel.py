"""Triton kernels of the dot interaction; one program per sample, which reads the sample's [F, D] features
once (the gather variant re-reads rows from L1/L2) and never writes a [F, F] square to memory.

forward, gram:    the sample's gram matrix X Xᵀ in registers (tl.dot over BLOCK_D slices of D), then each
                  block of BLOCK_P pairs picks its entries with a one-hot matmul.
forward, gather:  for each block of BLOCK_P pairs, the two rows of every pair are loaded (BLOCK_D columns
                  at a time) and multiplied and summed.
backward:         grad_X = (W + Wᵀ) X, where W[k, l] sums grad[p] over pairs p = (k, l): W is built in
                  registers by one-hot matmuls over blocks of BLOCK_P pairs; no atomics.
Half-precision values are exact in tf32, so their matmuls run on tensor cores without loss (tf32); fp32
matmuls use IEEE fp32. Negative indices count from the end, as in ATen.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import InteractionCall

GRAM_MAX_ROWS = 128  # the [F, F] gram (or W) lives in registers
TILE_MIN = 16  # tl.dot's smallest tile side


@triton.jit
def _pair_indices(first_ptr, second_ptr, p, mask, rows):
    """Pair p's rows (first, second), wrapped like ATen's negative indices; 0 where masked."""
    i = tl.load(first_ptr + p, mask=mask, other=0).to(tl.int64)
    j = tl.load(second_ptr + p, mask=mask, other=0).to(tl.int64)
    return tl.where(i < 0, i + rows, i), tl.where(j < 0, j + rows, j)


@triton.jit
def _rows_slice(x_base, f, d, rows, dim):
    """The [BLOCK_F, BLOCK_D] slice of one sample's contiguous [rows, dim] features, in fp32 (0 outside)."""
    mask = (f < rows)[:, None] & (d < dim)[None, :]
    return tl.load(x_base + f[:, None] * dim + d[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def pairwise_dots_gram_kernel(
    x_ptr,  # [batch, rows, dim] contiguous features
    first_ptr,  # [pairs] row of each pair's left factor
    second_ptr,  # [pairs] row of each pair's right factor
    out_ptr,  # [batch, pairs] contiguous
    rows,
    dim,
    pairs,
    PRECISION: tl.constexpr,  # "tf32" for half inputs (exact), "ieee" for fp32
    BLOCK_F: tl.constexpr,  # rows padded to a power of two >= 16
    BLOCK_P: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    x_base = x_ptr + b * rows * dim
    f = tl.arange(0, BLOCK_F)
    gram = tl.zeros([BLOCK_F, BLOCK_F], dtype=tl.float32)
    for d0 in range(0, dim, BLOCK_D):
        x = _rows_slice(x_base, f, d0 + tl.arange(0, BLOCK_D), rows, dim)
        gram += tl.dot(x, tl.trans(x), input_precision=PRECISION)
    for p0 in range(0, pairs, BLOCK_P):
        p = p0 + tl.arange(0, BLOCK_P)
        mask = p < pairs
        i, j = _pair_indices(first_ptr, second_ptr, p, mask, rows)
        pick = (i[:, None] == f[None, :]).to(tl.float32)
        picked_rows = tl.dot(pick, gram, input_precision="ieee")  # [BLOCK_P, BLOCK_F]: gram[i[p], :]
        dots = tl.sum(tl.where(j[:, None] == f[None, :], picked_rows, 0.0), axis=1)
        tl.store(out_ptr + b * pairs + p, dots.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def pairwise_dots_gather_kernel(
    x_ptr,  # [batch, rows, dim] contiguous features
    first_ptr,
    second_ptr,
    out_ptr,  # [batch, pairs] contiguous
    rows,
    dim,
    pairs,
    WIDE: tl.constexpr,  # accumulate in fp64 (fp64 features)
    BLOCK_P: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    x_base = x_ptr + b * rows * dim
    acc_type = tl.float64 if WIDE else tl.float32
    for p0 in range(0, pairs, BLOCK_P):
        p = p0 + tl.arange(0, BLOCK_P)
        mask = p < pairs
        i, j = _pair_indices(first_ptr, second_ptr, p, mask, rows)
        dots = tl.zeros([BLOCK_P], dtype=acc_type)
        for d0 in range(0, dim, BLOCK_D):
            d = d0 + tl.arange(0, BLOCK_D)
            m = mask[:, None] & (d < dim)[None, :]
            xi = tl.load(x_base + i[:, None] * dim + d[None, :], mask=m, other=0.0).to(acc_type)
            xj = tl.load(x_base + j[:, None] * dim + d[None, :], mask=m, other=0.0).to(acc_type)
            dots += tl.sum(xi * xj, axis=1)
        tl.store(out_ptr + b * pairs + p, dots.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def pairwise_dots_backward_kernel(
    grad_ptr,  # [batch, pairs] contiguous gradient of the dots
    x_ptr,  # [batch, rows, dim] contiguous features
    first_ptr,
    second_ptr,
    out_ptr,  # [batch, rows, dim] contiguous gradient of the features
    rows,
    dim,
    pairs,
    PRECISION: tl.constexpr,
    BLOCK_F: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    f = tl.arange(0, BLOCK_F)
    weights = tl.zeros([BLOCK_F, BLOCK_F], dtype=tl.float32)  # W[k, l]: grad summed over pairs (k, l)
    for p0 in range(0, pairs, BLOCK_P):
        p = p0 + tl.arange(0, BLOCK_P)
        mask = p < pairs
        i, j = _pair_indices(first_ptr, second_ptr, p, mask, rows)
        g = tl.load(grad_ptr + b * pairs + p, mask=mask, other=0.0).to(tl.float32)
        weighted_first = tl.where(i[:, None] == f[None, :], g[:, None], 0.0)  # [BLOCK_P, BLOCK_F]
        second = (j[:, None] == f[None, :]).to(tl.float32)
        weights += tl.dot(tl.trans(weighted_first), second, input_precision=PRECISION)
    weights = weights + tl.trans(weights)
    x_base = x_ptr + b * rows * dim
    for d0 in range(0, dim, BLOCK_D):
        d = d0 + tl.arange(0, BLOCK_D)
        x = _rows_slice(x_base, f, d, rows, dim)
        out = tl.dot(weights, x, input_precision=PRECISION)
        mask = (f < rows)[:, None] & (d < dim)[None, :]
        tl.store(out_ptr + b * rows * dim + f[:, None] * dim + d[None, :], out.to(out_ptr.dtype.element_ty), mask=mask)


def padded_rows(rows: int) -> int:
    return max(TILE_MIN, triton.next_power_of_2(rows))


def allocate(t: dict, call: InteractionCall) -> list[torch.Tensor]:
    shape = (call.batch, call.rows, call.dim) if call.backward else (call.batch, call.pairs)
    return [torch.empty(shape, dtype=call.dtype, device=t["features"].device)]


def interaction(t: dict, call: InteractionCall, genome: dict) -> list[torch.Tensor]:
    """The call's output, computed by the kernels."""
    (out,) = allocate(t, call)
    x, first, second = t["features"].contiguous(), t["first"].contiguous(), t["second"].contiguous()
    precision = "ieee" if call.dtype == torch.float32 else "tf32"
    options = dict(BLOCK_P=genome["BLOCK_P"], BLOCK_D=genome["BLOCK_D"], num_warps=genome["num_warps"],
                   num_stages=genome["num_stages"])
    sizes = (call.rows, call.dim, call.pairs)
    if call.backward:
        launch(pairwise_dots_backward_kernel, (call.batch,), t["grad"].contiguous(), x, first, second, out, *sizes,
               PRECISION=precision, BLOCK_F=padded_rows(call.rows), **options)
    elif genome["algorithm"] == "gram":
        launch(pairwise_dots_gram_kernel, (call.batch,), x, first, second, out, *sizes, PRECISION=precision,
               BLOCK_F=padded_rows(call.rows), **options)
    else:
        launch(pairwise_dots_gather_kernel, (call.batch,), x, first, second, out, *sizes,
               WIDE=call.dtype == torch.float64, **options)
    return [out]
