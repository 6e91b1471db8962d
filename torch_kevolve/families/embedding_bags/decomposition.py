"""The batched embedding bags in other PyTorch ops, which Inductor compiles for any device.

meaning: each table on its own, through ATen's embedding bag and its backward (patterns.meanings).
stacked: (backward only) every table's gradient from one index_add into one [sum of rows, dim] buffer: the
         pooled gradients (divided by their bag's size in mean mode) gathered per index, row ids shifted by
         each table's first row; each table's gradient is a slice of the buffer.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ...patterns import meanings
from ..embedding_bag.bags import bag_sizes, offset2bag

METHODS = ("meaning", "stacked")


def stacked_backward(grads: Sequence[torch.Tensor], indices: Sequence[torch.Tensor],
                     offsets: Sequence[torch.Tensor], num_weights: Sequence[int], mode: int) -> list[torch.Tensor]:
    """Every table's dense weight gradient (sum or mean mode) from one index_add, accumulated in fp32 for
    half-precision grads."""
    wide = torch.float32 if grads[0].dtype in (torch.float16, torch.bfloat16) else grads[0].dtype
    rows, first_row = [], 0
    contributions = []
    for grad, index, offset, table_rows in zip(grads, indices, offsets, num_weights):
        bag = offset2bag(offset, grad.shape[0], index.numel())
        pooled = grad.to(wide)
        if mode == 1:
            sizes = bag_sizes(bag, index, -1, grad.shape[0]).clamp_min(1).to(wide)
            pooled = pooled / sizes[:, None]
        contributions.append(pooled[bag])
        rows.append(index.to(torch.int64) + first_row)
        first_row += table_rows
    total = torch.zeros(first_row, grads[0].shape[1], dtype=wide, device=grads[0].device)
    total.index_add_(0, torch.cat(rows), torch.cat(contributions))
    return [part.to(grads[0].dtype) for part in total.split(list(num_weights))]


def embedding_bags_backward(grads, indices, offsets, num_weights, mode: int, include_last_offset: bool,
                            method: str) -> list[torch.Tensor]:
    """kevolve::embedding_bags_backward by `method`."""
    if method == "stacked":
        return stacked_backward(grads, indices, offsets, num_weights, mode)
    return meanings.embedding_bags_backward_meaning(grads, indices, offsets, num_weights, mode, include_last_offset)
