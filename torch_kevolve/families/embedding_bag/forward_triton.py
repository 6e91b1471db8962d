"""Triton forward of `aten._embedding_bag`: one program reduces BAGS_PER_PROGRAM bags over one
BLOCK_D slice of the embedding dimension, gathering BLOCK_N table rows per step as a
[BLOCK_N, BLOCK_D] tile (many loads in flight), accumulating in fp32.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .arguments import MODE_MAX
from .layout import forward_outputs

GENOME_CONSTEXPRS = ("BLOCK_N", "BLOCK_D", "BAGS_PER_PROGRAM")


@triton.jit
def embedding_bag_forward_kernel(
    weight_ptr,  # [num_weights, dim] table, contiguous
    indices_ptr,  # [num_indices] table rows, bag after bag
    offsets_ptr,  # [num_bags (+1)] first index position of each bag
    psw_ptr,  # [num_indices] per-sample weights (read when HAS_PSW)
    out_ptr,  # [num_bags, dim]
    offset2bag_ptr,  # [num_indices] bag of each index (written when WRITE_OFFSET2BAG)
    bag_size_ptr,  # [num_slots] non-padding count per bag; slots past num_bags get 0 (CUDA layout)
    max_indices_ptr,  # MAX_INDICES 1: [num_bags] bag sizes; 2: [num_bags, dim] argmax rows
    num_indices,
    num_bags,
    num_slots,
    dim,
    padding_idx,
    MODE: tl.constexpr,  # 0 sum, 1 mean, 2 max
    HAS_PSW: tl.constexpr,
    WRITE_OFFSET2BAG: tl.constexpr,
    MAX_INDICES: tl.constexpr,  # 0: nothing to write, 1: bag sizes, 2: argmax rows
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BAGS_PER_PROGRAM: tl.constexpr,
):
    pid_bag = tl.program_id(0)
    pid_d = tl.program_id(1)
    d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    d_mask = d < dim
    # Per-bag and per-index outputs are written by the programs of the first D-slice only.
    for j in range(BAGS_PER_PROGRAM):
        bag = pid_bag * BAGS_PER_PROGRAM + j
        if bag < num_bags:
            # Bag `bag` spans index positions [start, end); the last bag ends at num_indices.
            start = tl.load(offsets_ptr + bag).to(tl.int64)
            end = tl.load(offsets_ptr + bag + 1, mask=bag + 1 < num_bags, other=num_indices).to(tl.int64)
            count = tl.zeros([], dtype=tl.int32)
            if MODE == 2:
                acc = tl.full([BLOCK_D], float("-inf"), dtype=tl.float32)
                arg = tl.full([BLOCK_D], -1, dtype=tl.int64)
            else:
                acc = tl.zeros([BLOCK_D], dtype=tl.float32)
            for k in range(start, end, BLOCK_N):
                n = k + tl.arange(0, BLOCK_N)
                n_mask = n < end
                idx = tl.load(indices_ptr + n, mask=n_mask, other=0).to(tl.int64)
                keep = n_mask & (idx != padding_idx)
                tile_mask = keep[:, None] & d_mask[None, :]
                rows = tl.load(weight_ptr + idx[:, None] * dim + d[None, :], mask=tile_mask, other=0.0)
                rows = rows.to(tl.float32)
                count += tl.sum(keep.to(tl.int32), axis=0)
                if MODE == 2:
                    rows = tl.where(tile_mask, rows, float("-inf"))
                    tile_max = tl.max(rows, axis=0)
                    # First position in the tile holding the maximum, then the table row there.
                    is_max = tile_mask & (rows == tile_max[None, :])
                    first = tl.min(tl.where(is_max, n[:, None], end), axis=0)
                    tile_arg = tl.max(tl.where(n[:, None] == first[None, :], idx[:, None], -1), axis=0)
                    # Strictly greater keeps the earlier position on ties, as ATen does.
                    better = (first < end) & ((tile_max > acc) | (arg < 0))
                    acc = tl.where(better, tile_max, acc)
                    arg = tl.where(better, tile_arg, arg)
                else:
                    if HAS_PSW:
                        scale = tl.load(psw_ptr + n, mask=keep, other=0.0).to(tl.float32)
                        rows = rows * scale[:, None]
                    acc += tl.sum(rows, axis=0)
                if WRITE_OFFSET2BAG:
                    if pid_d == 0:
                        tl.store(offset2bag_ptr + n, tl.zeros([BLOCK_N], dtype=tl.int64) + bag, mask=n_mask)
            if MODE == 1:
                acc = acc / tl.maximum(count, 1).to(tl.float32)
            if MODE == 2:
                acc = tl.where(count > 0, acc, 0.0)
            row = bag.to(tl.int64) * dim + d
            tl.store(out_ptr + row, acc.to(out_ptr.dtype.element_ty), mask=d_mask)
            if MAX_INDICES == 2:
                tl.store(max_indices_ptr + row, arg, mask=d_mask)
            if pid_d == 0:
                tl.store(bag_size_ptr + bag, count)
                if MAX_INDICES == 1:
                    tl.store(max_indices_ptr + bag, count)
        elif bag < num_slots:
            if pid_d == 0:
                tl.store(bag_size_ptr + bag, 0)


def embedding_bag_forward(
    weight: torch.Tensor,
    indices: torch.Tensor,
    offsets: torch.Tensor,
    per_sample_weights: torch.Tensor | None,
    mode: int,
    include_last_offset: bool,
    padding_idx: int,
    genome: dict,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """`aten._embedding_bag`'s four outputs (ATen layout for the device), computed by the kernel."""
    output, offset2bag, bag_size, max_indices = forward_outputs(
        weight, indices, offsets, mode, include_last_offset, padding_idx
    )
    num_bags, dim = output.shape
    if mode == MODE_MAX:
        max_indices_kind = 2
    else:
        max_indices_kind = 1 if max_indices.numel() else 0
    grid = (triton.cdiv(bag_size.numel(), genome["BAGS_PER_PROGRAM"]), triton.cdiv(dim, genome["BLOCK_D"]))
    launch(
        embedding_bag_forward_kernel,
        grid,
        weight,
        indices,
        offsets,
        per_sample_weights,
        output,
        offset2bag,
        bag_size,
        max_indices,
        indices.numel(),
        num_bags,
        bag_size.numel(),
        dim,
        padding_idx,
        MODE=mode,
        HAS_PSW=per_sample_weights is not None,
        WRITE_OFFSET2BAG=offset2bag.numel() > 0,
        MAX_INDICES=max_indices_kind,
        num_warps=genome["num_warps"],
        num_stages=genome["num_stages"],
        **{name: genome[name] for name in GENOME_CONSTEXPRS},
    )
    return output, offset2bag, bag_size, max_indices
