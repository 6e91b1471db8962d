"""Triton GEMM: out = alpha * (a @ b) + beta * bias, one [BLOCK_M, BLOCK_N] output tile per program (per split).

Programs walk the output tiles in groups of GROUP_M tile rows (column by column inside a group), so the
tiles running together share rows of a and columns of b in L2. Each program sums its tile over K in
BLOCK_K steps in fp32 with tl.dot; the edges of M, N and K are masked (out-of-range elements load as 0).
With SPLIT_K > 1 (few output tiles, long K) each tile's K range is cut into SPLIT_K parts summed by their own
programs into an fp32 workspace, and a second kernel adds the parts and applies the epilogue (deterministic:
no atomics). `operands="k_major"` first copies an operand that is not K-major (a column-major a, a row-major b)
into a K-major one: Hopper's wgmma reads tf32 operands from shared memory only K-major.
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

SPLIT_SUM_BLOCK = 1024  # output elements per program of the split sum


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
    SPLIT_K: tl.constexpr,  # > 1: out is the fp32 workspace [SPLIT_K, M, N] of partial products (no epilogue)
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
    k_tiles = tl.cdiv(K, BLOCK_K)
    tiles_per_split = tl.cdiv(k_tiles, SPLIT_K)
    first_k = tl.program_id(1) * tiles_per_split
    last_k = tl.minimum(first_k + tiles_per_split, k_tiles)
    a_step = BLOCK_K * tl.cast(stride_ak, tl.int64)  # tl.cast: a stride of 1 arrives as a constexpr
    b_step = BLOCK_K * tl.cast(stride_bk, tl.int64)
    a_ptrs = a_ptr + rm[:, None] * stride_am + rk[None, :] * stride_ak + first_k * a_step
    b_ptrs = b_ptr + rk[:, None] * stride_bk + rn[None, :] * stride_bn + first_k * b_step
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(first_k, last_k):
        k_left = K - k * BLOCK_K
        a = tl.load(a_ptrs, mask=(rm[:, None] < M) & (rk[None, :] < k_left), other=0.0)
        b = tl.load(b_ptrs, mask=(rk[:, None] < k_left) & (rn[None, :] < N), other=0.0)
        if WIDEN:
            a, b = a.to(tl.float32), b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
        a_ptrs += a_step
        b_ptrs += b_step

    mask = (rm[:, None] < M) & (rn[None, :] < N)
    if SPLIT_K > 1:
        part = out_ptr + tl.program_id(1).to(tl.int64) * M * N
        tl.store(part + rm[:, None] * N + rn[None, :], acc, mask=mask)
    else:
        acc = acc * alpha
        if HAS_BIAS:
            bias = tl.load(bias_ptr + rm[:, None] * stride_biasm + rn[None, :] * stride_biasn, mask=mask, other=0.0)
            acc += beta * bias.to(tl.float32)
        tl.store(out_ptr + rm[:, None] * N + rn[None, :], acc.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def gemm_split_sum_kernel(
    parts_ptr,  # [SPLIT_K, M, N] fp32 partial products
    bias_ptr,  # as in gemm_kernel
    out_ptr,  # [M, N] contiguous
    M,
    N,
    stride_biasm,
    stride_biasn,
    alpha,
    beta,
    HAS_BIAS: tl.constexpr,
    SPLIT_K: tl.constexpr,
    BLOCK: tl.constexpr,
):
    e = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = e < M * N
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for s in range(SPLIT_K):
        acc += tl.load(parts_ptr + s * M * N + e, mask=mask, other=0.0)
    acc = acc * alpha
    if HAS_BIAS:
        bias = tl.load(bias_ptr + (e // N) * stride_biasm + (e % N) * stride_biasn, mask=mask, other=0.0)
        acc += beta * bias.to(tl.float32)
    tl.store(out_ptr + e, acc.to(out_ptr.dtype.element_ty), mask=mask)


def allocate(t: dict, call: GemmCall) -> list[torch.Tensor]:
    return [torch.empty((call.m, call.n), dtype=call.dtype, device=t["a"].device)]


def k_major(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """a and b with K as their unit-stride dim: a row-major copy of an a that is not, a column-major copy of b.
    (clone, not contiguous(): the graph rewrite traces this on fake tensors, where both mean one copy.)"""
    if a.stride(1) != 1:
        a = a.clone(memory_format=torch.contiguous_format)
    if b.stride(0) != 1:
        b = b.t().clone(memory_format=torch.contiguous_format).t()
    return a, b


def gemm(t: dict, call: GemmCall, genome: dict) -> list[torch.Tensor]:
    """The call's output, computed by the kernels (a bias scaled by beta = 0 is not read, as ATen ignores it)."""
    a, b = k_major(t["a"], t["b"]) if genome["operands"] == "k_major" else (t["a"], t["b"])
    (out,) = allocate(t, call)
    has_bias = call.bias != "none" and call.beta != 0
    bias = t["bias"].expand(call.m, call.n) if has_bias else out
    split = genome["SPLIT_K"]
    target = out if split == 1 else torch.empty((split, call.m, call.n), dtype=torch.float32, device=out.device)
    grid = (triton.cdiv(call.m, genome["BLOCK_M"]) * triton.cdiv(call.n, genome["BLOCK_N"]), split)
    launch(gemm_kernel, grid, a, b, bias, target, call.m, call.n, call.k, a.stride(0), a.stride(1), b.stride(0),
           b.stride(1), bias.stride(0), bias.stride(1), call.alpha, call.beta, HAS_BIAS=has_bias, SPLIT_K=split,
           BLOCK_M=genome["BLOCK_M"], BLOCK_N=genome["BLOCK_N"], BLOCK_K=genome["BLOCK_K"], GROUP_M=genome["GROUP_M"],
           PRECISION=genome["precision"], WIDEN=a.dtype == torch.bfloat16 and a.device.type == "cpu",
           num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    if split > 1:
        launch(gemm_split_sum_kernel, (triton.cdiv(call.m * call.n, SPLIT_SUM_BLOCK),), target, bias, out, call.m,
               call.n, bias.stride(0), bias.stride(1), call.alpha, call.beta, HAS_BIAS=has_bias, SPLIT_K=split,
               BLOCK=SPLIT_SUM_BLOCK, num_warps=4)
    return [out]
