"""The dense weight gradients of many embedding-bag tables in one backward: the tables are stacked into one
virtual table (row ids shifted by each table's first row, bags and index positions concatenated), so one
sorted algorithm runs once for all tables (a handful of launches instead of a handful per table), and each
table's gradient is a view of the one [sum of rows, dim] result.

segment: backward_triton's counting sort and segmented scan; rows: rows_backward's sort and gather.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import torch

from .backward_triton import embedding_bag_backward
from .rows_backward import embedding_bag_backward_rows


def stack(grads: Sequence[torch.Tensor], indices: Sequence[torch.Tensor], offsets: Sequence[torch.Tensor],
          num_weights: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The one virtual table's (grad, indices, offsets): grads concatenated, row ids shifted by each table's
    first row, offsets by each table's first index position (include_last_offset's trailing entries dropped).

    grads[t]: [bags_t, dim]; indices[t]: [n_t] row ids of table t; offsets[t]: [bags_t (+1)] first position of
    each bag in indices[t]; num_weights[t]: rows of table t. All tables share dim, dtype and index dtype.
    """
    if not (len(grads) == len(indices) == len(offsets) == len(num_weights)) or not grads:
        raise ValueError("one grad, indices, offsets and num_weights per table, at least one table")
    row_starts = itertools.accumulate(num_weights[:-1], initial=0)
    position_starts = itertools.accumulate((i.shape[0] for i in indices[:-1]), initial=0)
    stacked_indices = torch.cat([i + start for i, start in zip(indices, row_starts)])
    stacked_offsets = torch.cat([o.narrow(0, 0, g.shape[0]) + start
                                 for o, g, start in zip(offsets, grads, position_starts)])
    return torch.cat(list(grads)), stacked_indices, stacked_offsets


def embedding_bags_backward(grads: Sequence[torch.Tensor], indices: Sequence[torch.Tensor],
                            offsets: Sequence[torch.Tensor], num_weights: Sequence[int], mode: int,
                            genome: dict) -> list[torch.Tensor]:
    """grad of weight t = ATen's `_embedding_bag_backward` of table t (sum or mean mode, no padding index, no
    per-sample weights; offsets may carry include_last_offset's trailing entry, which is ignored), by the
    segment algorithm (backward_triton's genome). The arguments as `stack` takes them.
    """
    if genome["algorithm"] != "segment":
        raise ValueError("the stacked backward runs the segment algorithm only")
    grad, stacked_indices, stacked_offsets = stack(grads, indices, offsets, num_weights)
    stacked = embedding_bag_backward(grad, stacked_indices, stacked_offsets, None, None, None, sum(num_weights), mode,
                                     -1, genome)
    return list(stacked.split(list(num_weights)))


def embedding_bags_backward_rows(grads: Sequence[torch.Tensor], indices: Sequence[torch.Tensor],
                                 offsets: Sequence[torch.Tensor], num_weights: Sequence[int], mode: int,
                                 genome: dict) -> list[torch.Tensor]:
    """`embedding_bags_backward`'s gradients by the rows algorithm (rows_backward's genome)."""
    grad, stacked_indices, stacked_offsets = stack(grads, indices, offsets, num_weights)
    stacked = embedding_bag_backward_rows(grad, stacked_indices, stacked_offsets, None, sum(num_weights), mode, -1,
                                          genome)
    return list(stacked.split(list(num_weights)))
