"""Triton GEMM: out = alpha * (a @ b) + beta * bias, one [BLOCK_M, BLOCK_N] output tile per program.

Programs walk the output tiles in groups of GROUP_M tile rows (column by column inside a group), so the
tiles running together share rows of a and columns of b in L2. Each program sums its tile over K in
BLOCK_K steps in fp32 with tl.dot; the edges of M, N and K are masked (out-of-range elements load as 0).
For fp32 operands `precision` picks the dot: "tf32x3" splits each operand into a tf32 high part and a tf32
low part and sums three tensor-core products (hi*hi + hi*lo + lo*hi, close to fp32 accuracy), "ieee" is
the SIMT fp32 FMA dot (what cuBLAS runs with TF32 off). Half-precision operands always run natively on
tensor cores.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import GemmCall


@triton.jit
def gemm_kernel(
    a_ptr,  # [M, K], any strides
    b_ptr,  # [K, N], any strides
    bias_ptr,  # broadcast to [M, N] by its strides (stride 0 along broadcast dims); unused without HAS_BIAS
    out_ptr,  # [M, N] contiguous
    M,
    N,
    K,
    stride_am,
    stride_ak,
    stride_bk,
    stride_bn,
    stride_biasm,
    stride_biasn,
    alpha,
    beta,
    HAS_BIAS: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
    PRECISION: tl.constexpr,
    WIDEN: tl.constexpr,  # dot in fp32: for bf16 under Triton's interpreter, whose dot multiplies bf16 bits as integers
):
    pid = tl.program_id(0)
    tiles_m = tl.cdiv(M, BLOCK_M)
    tiles_n = tl.cdiv(N, BLOCK_N)
    group_size = GROUP_M * tiles_n
    first_m = (pid // group_size) * GROUP_M
    rows_in_group = tl.minimum(tiles_m - first_m, GROUP_M)
    pid_m = first_m + (pid % group_size) % rows_in_group
    pid_n = (pid % group_size) // rows_in_group

    # int64 offsets: row * stride can pass 2**31 on large or transposed operands.
    rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K).to(tl.int64)
    a_ptrs = a_ptr + rm[:, None] * stride_am + rk[None, :] * stride_ak
    b_ptrs = b_ptr + rk[:, None] * stride_bk + rn[None, :] * stride_bn
    a_step = BLOCK_K * tl.cast(stride_ak, tl.int64)  # tl.cast: a stride of 1 arrives as a constexpr
    b_step = BLOCK_K * tl.cast(stride_bk, tl.int64)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        k_left = K - k * BLOCK_K
        a = tl.load(a_ptrs, mask=(rm[:, None] < M) & (rk[None, :] < k_left), other=0.0)
        b = tl.load(b_ptrs, mask=(rk[:, None] < k_left) & (rn[None, :] < N), other=0.0)
        if WIDEN:
            a, b = a.to(tl.float32), b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
        a_ptrs += a_step
        b_ptrs += b_step

    mask = (rm[:, None] < M) & (rn[None, :] < N)
    acc = acc * alpha
    if HAS_BIAS:
        bias = tl.load(bias_ptr + rm[:, None] * stride_biasm + rn[None, :] * stride_biasn, mask=mask, other=0.0)
        acc += beta * bias.to(tl.float32)
    tl.store(out_ptr + rm[:, None] * N + rn[None, :], acc.to(out_ptr.dtype.element_ty), mask=mask)


def allocate(t: dict, call: GemmCall) -> list[torch.Tensor]:
    return [torch.empty((call.m, call.n), dtype=call.dtype, device=t["a"].device)]


def gemm(t: dict, call: GemmCall, genome: dict) -> list[torch.Tensor]:
    """The call's output, computed by the kernel (a bias scaled by beta = 0 is not read, as ATen ignores it)."""
    a, b = t["a"], t["b"]
    (out,) = allocate(t, call)
    has_bias = call.bias != "none" and call.beta != 0
    bias = t["bias"].expand(call.m, call.n) if has_bias else out
    grid = (triton.cdiv(call.m, genome["BLOCK_M"]) * triton.cdiv(call.n, genome["BLOCK_N"]),)
    launch(gemm_kernel, grid, a, b, bias, out, call.m, call.n, call.k, a.stride(0), a.stride(1), b.stride(0),
           b.stride(1), bias.stride(0), bias.stride(1), call.alpha, call.beta, HAS_BIAS=has_bias,
           BLOCK_M=genome["BLOCK_M"], BLOCK_N=genome["BLOCK_N"], BLOCK_K=genome["BLOCK_K"], GROUP_M=genome["GROUP_M"],
           PRECISION=genome["precision"], WIDEN=a.dtype == torch.bfloat16 and a.device.type == "cpu",
           num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    return [out]
