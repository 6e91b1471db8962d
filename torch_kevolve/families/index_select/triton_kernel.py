"""Triton row gathers and the dense embedding gradient.

gather:   each program copies BLOCK output elements out[o, j, i] = x[o, index[j], i] (no arithmetic,
          any dtype).
backward: each program adds BLOCK_N gradient rows (BLOCK_D columns) into an fp32 (fp64) table with
          atomics, skipping padding_idx; the table is cast to the gradient's dtype afterwards.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import GatherCall


@triton.jit
def gather_kernel(
    x_ptr,  # [outer, length, inner] contiguous
    index_ptr,  # [count] positions along length
    out_ptr,  # [outer, count, inner] contiguous
    total,  # outer * count * inner
    length,
    inner,
    count,
    BLOCK: tl.constexpr,
):
    e = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = e < total
    i = e % inner
    j = (e // inner) % count
    o = e // (inner * count)
    idx = tl.load(index_ptr + j, mask=mask, other=0).to(tl.int64)
    tl.store(out_ptr + e, tl.load(x_ptr + (o * length + idx) * inner + i, mask=mask), mask=mask)


@triton.jit
def embedding_backward_kernel(
    grad_ptr,  # [count, dim] contiguous gradient of the embedding output
    index_ptr,  # [count] table rows
    table_ptr,  # [num_weights, dim] fp32/fp64 zeros, accumulated into
    count,
    dim,
    padding_idx,  # rows equal to it get no gradient (-1: none)
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    n_mask = n < count
    idx = tl.load(index_ptr + n, mask=n_mask, other=0).to(tl.int64)
    mask = (n_mask & (idx != padding_idx))[:, None] & (d < dim)[None, :]
    g = tl.load(grad_ptr + n.to(tl.int64)[:, None] * dim + d[None, :], mask=mask, other=0.0)
    tl.atomic_add(table_ptr + idx[:, None] * dim + d[None, :], g.to(table_ptr.dtype.element_ty), mask=mask)


def allocate(t: dict, call: GatherCall) -> list[torch.Tensor]:
    values = t["values"]
    return [torch.empty(call.out_shape, dtype=values.dtype, device=values.device)]


def gather(t: dict, call: GatherCall, genome: dict) -> list[torch.Tensor]:
    """The call's output, computed by the kernels."""
    values, index = t["values"].contiguous(), t["index"].contiguous()
    launch_options = dict(num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    if call.backward:
        wide = torch.float64 if values.dtype == torch.float64 else torch.float32
        table = torch.zeros(call.out_shape, dtype=wide, device=values.device)
        grid = (triton.cdiv(call.count, genome["BLOCK_N"]), triton.cdiv(call.inner, genome["BLOCK_D"]))
        launch(embedding_backward_kernel, grid, values, index, table, call.count, call.inner, call.padding_idx,
               BLOCK_N=genome["BLOCK_N"], BLOCK_D=genome["BLOCK_D"], **launch_options)
        return [table.to(values.dtype)]
    (out,) = allocate(t, call)
    total = out.numel()
    launch(gather_kernel, (triton.cdiv(total, genome["BLOCK"]),), values, index, out, total, call.length,
           call.inner, call.count, BLOCK=genome["BLOCK"], **launch_options)
    return [out]
