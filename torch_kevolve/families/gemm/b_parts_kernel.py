"""Triton 3xTF32 GEMM with only b split before the product: out = alpha * (a @ b) + beta * bias, fp32, and
optionally its ReLU (kevolve::addmm_relu) applied to the tile before it is stored.

gemm_parts_kernel (presplit_kernel) reads both operands as tf32 parts made by a pass of their own: each
operand is read once, written twice its size and read back twice, and the product streams four part tiles per
K step through L2 and shared memory. Here only b (a layer's weight, the smaller operand of a DLRM's
activations @ weight) is split first; each program splits its fp32 tile of a in registers, with the rounding of
tf32_parts_kernel (hi = a to tf32 nearest, lo = (a - hi) to tf32 nearest). That drops the pass over a and a
third of the product's tile bytes, for a rounding of the a tile in every program of its row of output tiles.
The three tf32 products of a K tile (lo*hi + hi*lo + hi*hi) sum in a fresh accumulator added to the running
sum in fp32, as in gemm_parts_kernel (chained through the tensor cores over all of K, the sum loses low bits).
b's parts are padded with zero rows to a multiple of BLOCK_K; a is read in place (any strides) and masked past
K, so the padding multiplies zeros. Tiles and GROUP_M order as in gemm_kernel; no split-K.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import GemmCall
from .presplit_kernel import _to_tf32, tf32_parts
from .triton_kernel import allocate


@triton.jit
def gemm_b_parts_kernel(
    a_ptr,  # [M, K], any strides
    b_hi_ptr,  # [N, K_PADDED] contiguous tf32 parts of b (K-major: b transposed), zero past K
    b_lo_ptr,
    bias_ptr,  # broadcast to [M, N] by its strides; unused without HAS_BIAS
    out_ptr,  # [M, N] contiguous
    M,
    N,
    K,
    K_PADDED,  # a multiple of BLOCK_K
    stride_am,
    stride_ak,
    stride_biasm,
    stride_biasn,
    alpha,
    beta,
    HAS_BIAS: tl.constexpr,
    RELU: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    pid = tl.program_id(0)
    tiles_m = tl.cdiv(M, BLOCK_M)
    tiles_n = tl.cdiv(N, BLOCK_N)
    group_size = GROUP_M * tiles_n
    first_m = (pid // group_size) * GROUP_M
    rows_in_group = tl.minimum(tiles_m - first_m, GROUP_M)
    pid_m = first_m + (pid % group_size) % rows_in_group
    pid_n = (pid % group_size) // rows_in_group

    rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K).to(tl.int64)
    a_step = BLOCK_K * tl.cast(stride_ak, tl.int64)  # tl.cast: a stride of 1 arrives as a constexpr
    a_ptrs = a_ptr + rm[:, None] * stride_am + rk[None, :] * stride_ak
    b_offsets = rk[:, None] + rn[None, :] * K_PADDED
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    b_mask = rn[None, :] < N
    for k in range(0, K_PADDED // BLOCK_K):
        a = tl.load(a_ptrs, mask=(rm[:, None] < M) & (rk[None, :] < K - k * BLOCK_K), other=0.0)
        a_hi = _to_tf32(a)
        a_lo = _to_tf32(a - a_hi)
        b_hi = tl.load(b_hi_ptr + b_offsets, mask=b_mask, other=0.0)
        b_lo = tl.load(b_lo_ptr + b_offsets, mask=b_mask, other=0.0)
        step = tl.dot(a_lo, b_hi, input_precision="tf32")
        step = tl.dot(a_hi, b_lo, step, input_precision="tf32")
        acc += tl.dot(a_hi, b_hi, step, input_precision="tf32")  # promoted: an fp32 add, rounded to nearest
        a_ptrs += a_step
        b_offsets += BLOCK_K

    mask = (rm[:, None] < M) & (rn[None, :] < N)
    acc = acc * alpha
    if HAS_BIAS:
        bias = tl.load(bias_ptr + rm[:, None] * stride_biasm + rn[None, :] * stride_biasn, mask=mask, other=0.0)
        acc += beta * bias
    if RELU:  # NaN stays NaN, as torch.relu keeps it
        acc = tl.where(acc < 0.0, 0.0, acc)
    tl.store(out_ptr + rm[:, None] * N + rn[None, :], acc, mask=mask)


def gemm(t: dict, call: GemmCall, genome: dict, relu: bool = False) -> list[torch.Tensor]:
    """The call's output (fp32), its ReLU when `relu`: b split into parts of its transpose [N, K] zero padded
    to a multiple of BLOCK_K, then the product reading a as it is (a bias scaled by beta = 0 is not read, as
    ATen ignores it)."""
    padded_k = triton.cdiv(call.k, genome["BLOCK_K"]) * genome["BLOCK_K"]
    b_hi, b_lo = tf32_parts(t["b"].t(), padded_k)
    a = t["a"]
    (out,) = allocate(t, call)
    has_bias = call.bias != "none" and call.beta != 0
    bias = t["bias"].expand(call.m, call.n) if has_bias else out
    grid = (triton.cdiv(call.m, genome["BLOCK_M"]) * triton.cdiv(call.n, genome["BLOCK_N"]),)
    launch(gemm_b_parts_kernel, grid, a, b_hi, b_lo, bias, out, call.m, call.n, call.k, padded_k, a.stride(0),
           a.stride(1), bias.stride(0), bias.stride(1), call.alpha, call.beta, HAS_BIAS=has_bias, RELU=relu,
           BLOCK_M=genome["BLOCK_M"], BLOCK_N=genome["BLOCK_N"], BLOCK_K=genome["BLOCK_K"],
           GROUP_M=genome["GROUP_M"], num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    return [out]


def gemm_relu(t: dict, call: GemmCall, genome: dict) -> list[torch.Tensor]:
    """relu of the call's output, applied in the product kernel's epilogue."""
    return gemm(t, call, genome, relu=True)
