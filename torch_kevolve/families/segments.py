"""Random segment layouts (offsets into packed rows) for the jagged and segment-reduce families' inputs.

uniform: equal lengths (differing by at most one).
normal, large: lengths cut at uniform random points (some empty).
edge:    every third segment empty and its rows given to the first, which grows longer than the
         others (past a padded max length when there are rows enough): empty segments and truncation.
"""
from __future__ import annotations

import torch


def random_offsets(count: int, total: int, dist: str, g: torch.Generator) -> torch.Tensor:
    """CPU int64 offsets [count + 1] from 0 to `total` (count 0 needs total 0), drawn with the CPU generator `g`."""
    if count == 0:
        if total:
            raise ValueError(f"no segments cannot hold {total} rows")
        return torch.zeros(1, dtype=torch.int64)
    if dist == "uniform":
        lengths = torch.full((count,), total // count, dtype=torch.int64)
        lengths[: total % count] += 1
    else:
        cuts = torch.randint(0, total + 1, (count - 1,), generator=g).sort().values
        lengths = torch.cat([cuts, torch.tensor([total])]).diff(prepend=torch.zeros(1, dtype=torch.int64))
        if dist == "edge" and count > 1:
            emptied = torch.arange(1, count, 3)
            lengths[0] += lengths[emptied].sum()
            lengths[emptied] = 0
    return torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])


def longest(offsets: torch.Tensor) -> int:
    """The most rows one segment of `offsets` holds (0 without segments)."""
    return int(offsets.diff().max()) if offsets.numel() > 1 else 0


def inner_shape(inner: int, rank: int) -> tuple[int, ...]:
    """Trailing dims of `rank` whose product is `inner` ([inner, 1, ...]; rank 0 needs inner 1)."""
    return ((inner,) + (1,) * (rank - 1)) if rank else ()
