"""Random bags, tables and gradients for the embedding-bag families, per input distribution.

normal:  N(0, 1) values, random bag lengths (some bags empty), uniform table rows.
uniform: U(-1, 1) values, equal bag lengths, uniform table rows.
large:   U(-m, m) values with m in [1e3, 1e4], chosen so that sums stay finite in fp16.
edge:    empty bags and, on even seeds, one bag holding every index; rows drawn from a few table
         rows (many repeats, ties of equal rows for max), padding_idx hits and a padding-only bag.
"""
from __future__ import annotations

import math

import torch

from ...key import Problem

FP16_SAFE_SUM = 3e4


def generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def bags(problem: Problem, dist: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CPU int64 (indices, offsets) for the problem's bags; with include_last_offset the offsets
    end with num_indices, as ATen requires."""
    g = generator(seed, torch.device("cpu"))
    num_bags, num_indices = problem.dim("num_bags"), problem.dim("num_indices")
    num_weights, padding_idx = problem.dim("num_weights"), problem.param("padding_idx")
    one_bag_holds_all = dist == "edge" and seed % 2 == 0
    if dist == "uniform":
        starts = torch.arange(num_bags) * num_indices // num_bags
    elif one_bag_holds_all:
        starts = torch.where(torch.arange(num_bags) <= num_bags // 2, 0, num_indices)
    else:
        cuts = torch.randint(0, num_indices + 1, (num_bags - 1,), generator=g).sort().values
        starts = torch.cat([torch.zeros(1, dtype=torch.int64), cuts])
        if dist == "edge":
            emptied = torch.arange(1, num_bags - 1, 3)
            starts[emptied + 1] = starts[emptied]
    ends = torch.cat([starts[1:], torch.tensor([num_indices])])
    if dist == "edge":
        pool = torch.tensor(tie_rows(num_weights) + (num_weights // 3,))
        indices = pool[torch.randint(0, pool.numel(), (num_indices,), generator=g)]
    else:
        indices = torch.randint(0, num_weights, (num_indices,), generator=g)
    if padding_idx >= 0:
        hits = torch.rand(num_indices, generator=g) < (0.25 if dist == "edge" else 0.1)
        indices = torch.where(hits, padding_idx, indices)
        nonempty = (ends > starts).nonzero().flatten()
        if dist == "edge" and not one_bag_holds_all and nonempty.numel():
            b = int(nonempty[0])
            indices[int(starts[b]) : int(ends[b])] = padding_idx
    offsets = starts
    if problem.param("include_last_offset"):
        offsets = torch.cat([starts, torch.tensor([num_indices])])
    return indices, offsets


def tie_rows(num_weights: int) -> tuple[int, int]:
    """Two table rows the edge distribution gives equal values (ties for max mode)."""
    return 0, num_weights - 1


def longest_bag(offsets: torch.Tensor, num_bags: int, num_indices: int) -> int:
    starts = offsets[:num_bags]
    ends = torch.cat([offsets[1:num_bags], offsets.new_tensor([num_indices])])
    return int((ends - starts).max()) if num_bags else 0


def most_repeats(indices: torch.Tensor) -> int:
    return int(indices.bincount().max()) if indices.numel() else 0


def values(
    shape: tuple[int, ...], dist: str, reach: int, dtype: torch.dtype, g: torch.Generator, device
) -> torch.Tensor:
    """Values drawn from `dist`; `reach` is how many of them (at most) one output sums."""
    if dist == "uniform":
        out = torch.rand(shape, generator=g, device=device) * 2 - 1
    elif dist == "large":
        m = min(1e4, max(1e3, FP16_SAFE_SUM / max(reach, 1)))
        out = (torch.rand(shape, generator=g, device=device) * 2 - 1) * m
    else:
        out = torch.randn(shape, generator=g, device=device)
    return out.to(dtype)


def table(shape: tuple[int, int], dist: str, reach: int, dtype, g, device) -> torch.Tensor:
    """An embedding table; the edge distribution makes its tie rows equal."""
    weight = values(shape, dist, reach, dtype, g, device)
    if dist == "edge":
        a, b = tie_rows(shape[0])
        weight[b] = weight[a]
    return weight


def sample_weights(num_indices: int, dist: str, dtype, g, device) -> torch.Tensor:
    """per_sample_weights: within [0.5, 1.5] for large (keeps sums bounded), zeros among them for edge."""
    if dist == "large":
        out = torch.rand(num_indices, generator=g, device=device) + 0.5
    elif dist == "uniform":
        out = torch.rand(num_indices, generator=g, device=device)
    else:
        out = torch.randn(num_indices, generator=g, device=device)
        if dist == "edge":
            out[::4] = 0
    return out.to(dtype)


def rows_touched(draws: int, rows: int) -> int:
    """Expected distinct rows among `draws` uniform draws from `rows` rows: rows (1 - (1 - 1/rows)^draws). No
    distribution of independent draws touches more on average, so it bounds the table bytes a lookup must read
    from memory (a repeated row can come from L2)."""
    if not draws or not rows:
        return 0
    return round(rows * -math.expm1(draws * math.log1p(-1 / rows)))
