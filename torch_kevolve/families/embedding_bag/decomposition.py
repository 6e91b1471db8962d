"""`_embedding_bag` and its dense backward in plain PyTorch ops that Inductor compiles for any device.

No data-dependent shapes and no host synchronisation; sums accumulate in fp32. `reduce` picks how
rows are accumulated into bags (forward) or table rows (backward): index_add or scatter_add.
"""
from __future__ import annotations

import torch

from . import bags
from .arguments import MODE_MAX, MODE_MEAN
from .layout import forward_layout

REDUCTIONS = ("index_add", "scatter_add")


def _accumulate(target: torch.Tensor, index: torch.Tensor, rows: torch.Tensor, reduce: str) -> torch.Tensor:
    """target[index[i]] += rows[i] for every i, out of place."""
    if reduce == "index_add":
        return target.index_add(0, index, rows)
    index = index.long().view(-1, *[1] * (rows.dim() - 1)).expand_as(rows)
    return target.scatter_add(0, index, rows)


def embedding_bag_forward(
    weight: torch.Tensor,
    indices: torch.Tensor,
    offsets: torch.Tensor,
    per_sample_weights: torch.Tensor | None,
    mode: int,
    include_last_offset: bool,
    padding_idx: int,
    reduce: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """`aten._embedding_bag`'s four outputs in ATen's layout for the device."""
    (out_shape, _), (offset2bag_shape, aux_dtype), (bag_size_shape, _), (max_shape, _) = forward_layout(
        weight, indices, offsets, mode, include_last_offset, padding_idx
    )
    num_bags, dim = out_shape
    bag_of = bags.offset2bag(offsets, num_bags, indices.numel())
    sizes = bags.bag_sizes(bag_of, indices, padding_idx, num_bags)
    keep = indices != padding_idx
    rows = weight.index_select(0, indices)
    if mode == MODE_MAX:
        output, max_indices = _bag_max(rows, indices, keep, bag_of, sizes, num_bags)
    else:
        scale = keep.float() if per_sample_weights is None else keep * per_sample_weights.float()
        zeros = torch.zeros(num_bags, dim, dtype=torch.float32, device=weight.device)
        output = _accumulate(zeros, bag_of, rows.float() * scale[:, None], reduce)
        if mode == MODE_MEAN:
            output = output / sizes.clamp(min=1)[:, None]
        output = output.to(weight.dtype)
        max_indices = sizes[: max_shape[0]].clone()
    offset2bag = bag_of[: offset2bag_shape[0]]
    bag_size = torch.cat([sizes, sizes.new_zeros(bag_size_shape[0] - num_bags)])
    return output, offset2bag.to(aux_dtype), bag_size.to(aux_dtype), max_indices.to(aux_dtype)


def _bag_max(rows, indices, keep, bag_of, sizes, num_bags):
    """Per-bag maximum and the table row of its first occurrence (-1 for bags without indices)."""
    num_indices, dim = rows.shape
    scatter_index = bag_of.long()[:, None].expand(num_indices, dim)
    values = torch.where(keep[:, None], rows, float("-inf"))
    zeros = rows.new_zeros(num_bags, dim)
    maxima = zeros.scatter_reduce(0, scatter_index, values, "amax", include_self=False)
    output = torch.where(sizes[:, None] > 0, maxima, 0)
    is_max = keep[:, None] & (values == maxima.index_select(0, bag_of))
    positions = torch.arange(num_indices, device=rows.device)[:, None].expand(num_indices, dim)
    candidates = torch.where(is_max, positions, num_indices)
    no_position = torch.full((num_bags, dim), num_indices, device=rows.device)
    first = no_position.scatter_reduce(0, scatter_index, candidates, "amin", include_self=True)
    row_at = torch.cat([indices.long(), indices.new_full((1,), -1).long()])
    return output, row_at[first]


def embedding_bag_backward(
    grad: torch.Tensor,
    indices: torch.Tensor,
    offsets: torch.Tensor | None,
    offset2bag: torch.Tensor,
    max_indices: torch.Tensor,
    per_sample_weights: torch.Tensor | None,
    num_weights: int,
    mode: int,
    padding_idx: int,
    reduce: str,
) -> torch.Tensor:
    """The dense weight gradient; bags from `offsets`, or from `offset2bag` when offsets is None."""
    num_bags, dim = grad.shape
    bag_of = offset2bag if offsets is None else bags.offset2bag(offsets, num_bags, indices.numel())
    sizes = bags.bag_sizes(bag_of, indices, padding_idx, num_bags)
    zeros = torch.zeros(num_weights, dim, dtype=torch.float32, device=grad.device)
    if mode == MODE_MAX:
        valid = (max_indices >= 0) & (max_indices != padding_idx) & (sizes[:, None] > 0)
        flat = torch.where(valid, max_indices.long(), 0) * dim + torch.arange(dim, device=grad.device)
        values = torch.where(valid, grad.float(), 0.0)
        flat_grad = _accumulate(zeros.view(-1), flat.reshape(-1), values.reshape(-1), reduce)
        return flat_grad.view(num_weights, dim).to(grad.dtype)
    scale = (indices != padding_idx).float()
    if mode == MODE_MEAN:
        scale = scale / sizes.clamp(min=1).float()[bag_of]
    elif per_sample_weights is not None:
        scale = scale * per_sample_weights.float()
    rows = grad.index_select(0, bag_of).float() * scale[:, None]
    return _accumulate(zeros, indices, rows, reduce).to(grad.dtype)
