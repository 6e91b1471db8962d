"""Feature-preprocessing modules as a recommendation-model engineer writes them in plain PyTorch.

Each module documents its semantics; `make(name, batch, device)` builds one with realistic inputs for a
batch size and returns `(module, inputs)` with `module(*inputs)` its output.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

GOLDEN_MULTIPLIER = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed int64 (Fibonacci hashing)


class FeatureHash(nn.Module):
    """Multiply-shift hash of raw int64 ids into `rows` embedding rows:
    ((ids * multiplier) >> shift) % rows, the product wrapping in int64 and the shift arithmetic, so
    the result lies in [0, rows)."""

    def __init__(self, rows: int, multiplier: int = GOLDEN_MULTIPLIER, shift: int = 24):
        super().__init__()
        self.rows, self.multiplier, self.shift = rows, multiplier, shift

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return ((ids * self.multiplier) >> self.shift) % self.rows


class Bucketize(nn.Module):
    """Bucket index of every value of a dense feature: the number of borders below it (right=False:
    borders < value; right=True: borders <= value), as torch.bucketize."""

    def __init__(self, borders: torch.Tensor, right: bool = False):
        super().__init__()
        self.register_buffer("borders", borders)
        self.right = right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.bucketize(x, self.borders, right=self.right)


class MapId(nn.Module):
    """Raw ids to embedding rows through a sorted vocabulary: an id equal to vocabulary[k] maps to
    rows[k]; any other id (between keys, below the first or past the last) maps to `default_row`.
    Written as users do: bucketize -> clamp -> gather -> where."""

    def __init__(self, vocabulary: torch.Tensor, rows: torch.Tensor, default_row: int):
        super().__init__()
        self.register_buffer("vocabulary", vocabulary)
        self.register_buffer("rows", rows)
        self.default_row = default_row

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        position = torch.bucketize(ids, self.vocabulary).clamp(max=self.vocabulary.numel() - 1).flatten()
        found = self.vocabulary.gather(0, position) == ids.flatten()
        row = self.rows.gather(0, position)
        return torch.where(found, row, self.default_row).view_as(ids)


class MBDT(nn.Module):
    """Many dense features, each bucketized by its own sorted borders, merged into one id tensor.

    borders [F, max_borders] holds feature f's lengths[f] borders first, padded with +inf. Feature f's
    value v gets bucket min(#borders of f below v, lengths[f]) (right: <= v; NaN gets lengths[f]) plus
    offsets[f] = sum over g < f of (lengths[g] + 1), so that ids are unique across features.
    forward(x [B, F]) -> [B, F] int64.
    """

    def __init__(self, borders: torch.Tensor, lengths: torch.Tensor, right: bool = False):
        super().__init__()
        self.register_buffer("borders", borders)
        self.register_buffer("lengths", lengths)
        self.register_buffer("offsets", torch.cumsum(lengths + 1, 0) - (lengths + 1))
        self.right = right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        buckets = torch.searchsorted(self.borders, x.t().contiguous(), right=self.right)
        return (torch.minimum(buckets, self.lengths[:, None]) + self.offsets[:, None]).t()


class BatchEventTruncate(nn.Module):
    """Keep each user's last `keep` events of a jagged batch: user u owns values[offsets[u]:offsets[u+1]].
    forward(values, offsets) -> (kept values in the same order, new offsets [users + 1]); users with
    fewer events keep all of them, empty users stay empty. Reads the kept total back to the host once."""

    def __init__(self, keep: int):
        super().__init__()
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.keep = keep

    def forward(self, values: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ends = offsets[1:]
        kept = torch.clamp(ends - offsets[:-1], max=self.keep)
        new_offsets = torch.nn.functional.pad(torch.cumsum(kept, 0), (1, 0))
        total = int(new_offsets[-1])
        position = torch.arange(total, device=values.device)
        user = torch.bucketize(position, new_offsets[1:], right=True)
        source = ends[user] - kept[user] + position - new_offsets[user]
        return values[source], new_offsets


def feature_hash(batch: int, device, ids_per_sample: int = 16, rows: int = 10_000_019) -> tuple[nn.Module, tuple]:
    """Raw 62-bit ids, `ids_per_sample` per sample, hashed into a ~10M-row table."""
    g = torch.Generator(device=device).manual_seed(0)
    ids = torch.randint(0, 1 << 62, (batch, ids_per_sample), generator=g, device=device)
    return FeatureHash(rows).to(device), (ids,)


def bucketize(batch: int, device, values_per_sample: int = 16, borders: int = 255,
              right: bool = False) -> tuple[nn.Module, tuple]:
    """A dense list feature ([batch, values_per_sample], log-normal like counts) cut at its quantiles."""
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, values_per_sample, generator=g, device=device).exp()
    quantiles = torch.linspace(0, 1, borders + 2, device=device)[1:-1]
    edges = torch.quantile(torch.randn(100_000, generator=g, device=device).exp(), quantiles)
    return Bucketize(edges, right).to(device), (x,)


def map_id(batch: int, device, ids_per_sample: int = 8, vocabulary: int = 100_000,
           unknown: float = 0.2) -> tuple[nn.Module, tuple]:
    """A 100k-key vocabulary of raw ids in [0, 2^40); about `unknown` of the looked-up ids are not in it."""
    g = torch.Generator(device=device).manual_seed(0)
    keys = torch.randint(0, 1 << 40, (vocabulary,), generator=g, device=device).unique()
    rows = torch.randperm(keys.numel(), generator=g, device=device)
    known = keys[torch.randint(0, keys.numel(), (batch, ids_per_sample), generator=g, device=device)]
    raw = torch.randint(0, 1 << 40, (batch, ids_per_sample), generator=g, device=device)
    ids = torch.where(torch.rand(batch, ids_per_sample, generator=g, device=device) < unknown, raw, known)
    return MapId(keys, rows, default_row=keys.numel()).to(device), (ids,)


def mbdt(batch: int, device, features: int = 256, max_borders: int = 32,
         right: bool = False) -> tuple[nn.Module, tuple]:
    """`features` normal features, each with 1..max_borders sorted borders of its own."""
    g = torch.Generator(device=device).manual_seed(0)
    lengths = torch.randint(1, max_borders + 1, (features,), generator=g, device=device)
    drawn = torch.randn(features, max_borders, generator=g, device=device).sort(1).values
    borders = torch.where(torch.arange(max_borders, device=device) < lengths[:, None], drawn, float("inf"))
    x = torch.randn(batch, features, generator=g, device=device)
    return MBDT(borders, lengths, right).to(device), (x,)


def batch_event_truncate(batch: int, device, keep: int = 50, longest: int = 100) -> tuple[nn.Module, tuple]:
    """`batch` users with 0..longest int64 event ids each (about 1 in 10 empty); keep the last `keep`."""
    g = torch.Generator(device=device).manual_seed(0)
    lengths = torch.randint(0, longest + 1, (batch,), generator=g, device=device)
    lengths = torch.where(torch.rand(batch, generator=g, device=device) < 0.1, 0, lengths)
    offsets = torch.nn.functional.pad(torch.cumsum(lengths, 0), (1, 0))
    values = torch.randint(0, 1 << 40, (int(offsets[-1]),), generator=g, device=device)
    return BatchEventTruncate(keep).to(device), (values, offsets)


FACTORIES: dict[str, Callable[..., tuple[nn.Module, tuple]]] = {
    "feature_hash": feature_hash,
    "bucketize": bucketize,
    "map_id": map_id,
    "mbdt": mbdt,
    "batch_event_truncate": batch_event_truncate,
}


def make(name: str, batch: int, device, **sizes) -> tuple[nn.Module, tuple]:
    """The module `name` (a key of FACTORIES) and its inputs for `batch` samples on `device`."""
    return FACTORIES[name](batch, device, **sizes)
