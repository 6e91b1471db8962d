"""Inclusive prefix sums of a 1-D int32 tensor in two Triton passes: each block of BLOCK elements' sum, then each
block's scan plus the sums of the blocks before it. In place of torch.cumsum where the sort of the bag-tile
backwards counts slots per row: Inductor lowers that cumsum of 2.6 million rows (the DLRM's 26 x 100k) to a split
scan of 26.5 us on the H100 (benchmarks/results/README.md), for 10 MB that these passes read twice and write once.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .triton_launch import launch

BLOCK = 4096  # elements per program of both passes
SUMS_BLOCK = 1024  # block sums per step of the second pass's carry


@triton.jit
def block_sums_kernel(x_ptr, sums_ptr, n, BLOCK: tl.constexpr):
    """sums[p] = the sum of x[p * BLOCK, (p + 1) * BLOCK)."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    tl.store(sums_ptr + tl.program_id(0), tl.sum(tl.load(x_ptr + i, mask=i < n, other=0), axis=0))


@triton.jit
def scan_blocks_kernel(x_ptr, sums_ptr, out_ptr, n, blocks, BLOCK: tl.constexpr, SUMS_BLOCK: tl.constexpr):
    """out over block p = the inclusive scan of x's block p plus the sums of blocks 0 .. p - 1 (of `blocks`)."""
    block = tl.program_id(0)
    carry = tl.zeros([], dtype=tl.int32)
    for k in range(0, blocks, SUMS_BLOCK):
        j = k + tl.arange(0, SUMS_BLOCK)
        carry += tl.sum(tl.load(sums_ptr + j, mask=j < block, other=0), axis=0)
    i = block.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + i, mask=i < n, other=0)
    tl.store(out_ptr + i, tl.cumsum(x, axis=0) + carry, mask=i < n)


def inclusive_prefix_sums(x: torch.Tensor) -> torch.Tensor:
    """torch.cumsum(x, 0, dtype=torch.int32) of a contiguous 1-D int32 tensor whose total fits int32."""
    if x.dim() != 1 or x.dtype != torch.int32 or not x.is_contiguous():
        raise ValueError(f"a contiguous 1-D int32 tensor, not {x.dtype} of shape {tuple(x.shape)}")
    n = x.shape[0]
    blocks = triton.cdiv(n, BLOCK)
    sums = torch.empty(blocks, dtype=torch.int32, device=x.device)
    out = torch.empty_like(x)
    launch(block_sums_kernel, (blocks,), x, sums, n, BLOCK=BLOCK, num_warps=8, num_stages=1)
    launch(scan_blocks_kernel, (blocks,), x, sums, out, n, blocks, BLOCK=BLOCK, SUMS_BLOCK=SUMS_BLOCK, num_warps=8,
           num_stages=1)
    return out
