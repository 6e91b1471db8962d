"""Triton 3xTF32 GEMM on operands split before the product: out = alpha * (a @ b) + beta * bias, fp32, and
optionally its ReLU (kevolve::addmm_relu) applied to the tile before it is stored.

gemm_kernel's "tf32x3" splits each fp32 operand tile into a tf32 high and low part inside its K loop, for
every output tile that reads it. Here one memory-bound pass (tf32_parts_kernel) splits each operand once into
two K-major fp32 arrays whose values are exact tf32 numbers: hi = x rounded to tf32 (11 significant bits, to
nearest), lo = (x - hi) rounded to tf32. The product kernel then only loads tiles and issues three plain tf32
tensor-core products, lo*hi + hi*lo + hi*hi: tf32 is exact on these parts, so the sum carries the same terms as
"tf32x3" (close to fp32 accuracy; lo*lo, about 2**-22 of each product, is dropped). Each K tile's three products
sum in a fresh accumulator, added to the running sum by an fp32 add: chained through the tensor cores over all
of K, the sum lost about half an fp32 ulp per MMA step on the H200 (the error grew with K, 1.1e-5 of the largest
output at K = 4096 against 8.6e-7 for cuBLAS; a DLRM's gradients moved by 1e-2). The parts cost a read of
each operand and a write of twice its size. Values within 2**-12 of the fp32 maximum round to infinity.
The parts' rows are padded with zeros to a multiple of BLOCK_K: the product loop needs no K mask, and its rows
start 16-byte aligned whatever K is (K = 479, DLRM's interaction width, had cost as much as K = 1024: a row
stride Triton cannot prove aligned forbids vector loads). Tiles and GROUP_M order as in gemm_kernel; no split-K.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import GemmCall
from .triton_kernel import allocate

PARTS_BLOCK = 64  # rows and columns of the tile one program of the split copies


@triton.jit
def _to_tf32(x):
    """x rounded to the nearest tf32 value (ties away from zero), as an fp32 number: the low 13 mantissa bits
    cleared after adding half of their weight (a carry moves into the exponent, as rounding should)."""
    bits = x.to(tl.int32, bitcast=True)
    return ((bits + 0x1000) & -8192).to(tl.float32, bitcast=True)


@triton.jit
def tf32_parts_kernel(
    x_ptr,  # [R, C], any strides
    hi_ptr,  # [R, WIDTH] contiguous; columns C.. are zeros
    lo_ptr,  # [R, WIDTH] contiguous; columns C.. are zeros
    R,
    C,
    WIDTH,
    stride_r,
    stride_c,
    BLOCK: tl.constexpr,
):
    rr = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    rc = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = (rr[:, None] < R) & (rc[None, :] < C)
    x = tl.load(x_ptr + rr[:, None] * stride_r + rc[None, :] * stride_c, mask=mask, other=0.0).to(tl.float32)
    hi = _to_tf32(x)
    out = rr[:, None] * WIDTH + rc[None, :]
    written = (rr[:, None] < R) & (rc[None, :] < WIDTH)
    tl.store(hi_ptr + out, hi, mask=written)
    tl.store(lo_ptr + out, _to_tf32(x - hi), mask=written)


@triton.jit
def gemm_parts_kernel(
    a_hi_ptr,  # [M, K] contiguous tf32 parts of a, K a multiple of BLOCK_K (zero padded)
    a_lo_ptr,
    b_hi_ptr,  # [N, K] contiguous tf32 parts of b (K-major: b transposed), K as a's
    b_lo_ptr,
    bias_ptr,  # broadcast to [M, N] by its strides; unused without HAS_BIAS
    out_ptr,  # [M, N] contiguous
    M,
    N,
    K,
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
    a_offsets = rm[:, None] * K + rk[None, :]
    b_offsets = rk[:, None] + rn[None, :] * K
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    a_mask = rm[:, None] < M
    b_mask = rn[None, :] < N
    for k in range(0, K // BLOCK_K):
        a_hi = tl.load(a_hi_ptr + a_offsets, mask=a_mask, other=0.0)
        a_lo = tl.load(a_lo_ptr + a_offsets, mask=a_mask, other=0.0)
        b_hi = tl.load(b_hi_ptr + b_offsets, mask=b_mask, other=0.0)
        b_lo = tl.load(b_lo_ptr + b_offsets, mask=b_mask, other=0.0)
        step = tl.dot(a_lo, b_hi, input_precision="tf32")
        step = tl.dot(a_hi, b_lo, step, input_precision="tf32")
        acc += tl.dot(a_hi, b_hi, step, input_precision="tf32")  # promoted: an fp32 add, rounded to nearest
        a_offsets += BLOCK_K
        b_offsets += BLOCK_K

    mask = (rm[:, None] < M) & (rn[None, :] < N)
    acc = acc * alpha
    if HAS_BIAS:
        bias = tl.load(bias_ptr + rm[:, None] * stride_biasm + rn[None, :] * stride_biasn, mask=mask, other=0.0)
        acc += beta * bias
    if RELU:  # NaN stays NaN, as torch.relu keeps it
        acc = tl.where(acc < 0.0, 0.0, acc)
    tl.store(out_ptr + rm[:, None] * N + rn[None, :], acc, mask=mask)


def tf32_parts(x: torch.Tensor, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The tf32 high and low parts of the 2-D fp32 `x` (any strides), each a contiguous [rows, width] tensor:
    x's parts, then zero columns up to `width` (default: x's own width; never fewer)."""
    rows, columns = x.shape
    width = columns if width is None else width
    if width < columns:
        raise ValueError(f"parts of width {width} cannot hold {columns} columns")
    hi, lo = (torch.empty(rows, width, dtype=torch.float32, device=x.device) for _ in range(2))
    grid = (triton.cdiv(rows, PARTS_BLOCK), triton.cdiv(width, PARTS_BLOCK))
    launch(tf32_parts_kernel, grid, x, hi, lo, rows, columns, width, x.stride(0), x.stride(1), BLOCK=PARTS_BLOCK,
           num_warps=4)
    return hi, lo


def gemm(t: dict, call: GemmCall, genome: dict, relu: bool = False) -> list[torch.Tensor]:
    """The call's output (fp32), its ReLU when `relu`: a split into parts [M, K], b into parts of its transpose
    [N, K], both zero padded to a multiple of BLOCK_K, then the product (a bias scaled by beta = 0 is not read, as
    ATen ignores it)."""
    padded_k = triton.cdiv(call.k, genome["BLOCK_K"]) * genome["BLOCK_K"]
    a_hi, a_lo = tf32_parts(t["a"], padded_k)
    b_hi, b_lo = tf32_parts(t["b"].t(), padded_k)
    (out,) = allocate(t, call)
    has_bias = call.bias != "none" and call.beta != 0
    bias = t["bias"].expand(call.m, call.n) if has_bias else out
    grid = (triton.cdiv(call.m, genome["BLOCK_M"]) * triton.cdiv(call.n, genome["BLOCK_N"]),)
    launch(gemm_parts_kernel, grid, a_hi, a_lo, b_hi, b_lo, bias, out, call.m, call.n, padded_k, bias.stride(0),
           bias.stride(1), call.alpha, call.beta, HAS_BIAS=has_bias, RELU=relu, BLOCK_M=genome["BLOCK_M"],
           BLOCK_N=genome["BLOCK_N"], BLOCK_K=genome["BLOCK_K"], GROUP_M=genome["GROUP_M"],
           num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    return [out]


def gemm_relu(t: dict, call: GemmCall, genome: dict) -> list[torch.Tensor]:
    """relu of the call's output, applied in the product kernel's epilogue."""
    return gemm(t, call, genome, relu=True)
