"""Bag structure from offsets or offset2bag, in plain PyTorch ops (no host synchronisation).

Bag b holds index positions [offsets[b], offsets[b + 1]), and the last bag ends at the number of
indices (as in ATen on CPU and CUDA, which ignore the trailing offset of include_last_offset).
"""
from __future__ import annotations

import torch


def bag_of(offsets: torch.Tensor, num_bags: int, positions: torch.Tensor) -> torch.Tensor:
    """The bag holding each index position in `positions`, in the offsets dtype."""
    int32 = offsets.dtype == torch.int32
    found = torch.searchsorted(offsets[:num_bags], positions.to(offsets.dtype), right=True, out_int32=int32)
    return found - 1


def offset2bag(offsets: torch.Tensor, num_bags: int, num_indices: int) -> torch.Tensor:
    """The bag of every index position, in the offsets dtype."""
    return bag_of(offsets, num_bags, torch.arange(num_indices, dtype=offsets.dtype, device=offsets.device))


def offsets_from_offset2bag(bag_of: torch.Tensor, num_bags: int) -> torch.Tensor:
    """The first index position of every bag, from a (non-decreasing) offset2bag."""
    bags = torch.arange(num_bags, dtype=bag_of.dtype, device=bag_of.device)
    return torch.searchsorted(bag_of, bags)


def bag_sizes(bag_of: torch.Tensor, indices: torch.Tensor, padding_idx: int, num_bags: int) -> torch.Tensor:
    """How many indices of each bag are not padding_idx, in the indices dtype."""
    counted = (indices != padding_idx).to(indices.dtype)
    return torch.zeros(num_bags, dtype=indices.dtype, device=indices.device).index_add(0, bag_of, counted)
