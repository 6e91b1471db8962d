"""A sequence model over jagged user histories (DIN-style target attention) with raw-feature preprocessing.

Per user: a jagged history of item ids, a target item, a raw user id, a few raw dense features (given
feature-major, [F, B], as a feature store hands them out) and a jagged
list of category ids. The history is embedded, padded (`aten._jagged_to_padded_dense_forward`) and pooled by
attention against the target item; the user id is hashed into its table, the dense features bucketized into
theirs, the categories embedded and summed per user (`torch.segment_reduce`); an MLP gives the logit, BCE the
loss. Factories take a device and return `(model, inputs)` with `model(*inputs)` the training loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dlrm import mlp

# Multiply-shift hashing: the 64-bit golden-ratio constant 0x9E3779B97F4A7C15, as a signed int64.
HASH_MULTIPLIER = 0x9E3779B97F4A7C15 - (1 << 64)
HASH_SHIFT = 24


@dataclass(frozen=True)
class SeqConfig:
    """Sizes of one sequence model. Histories hold 0..`max_history` items and category lists
    0..`max_categories` ids (the first user has neither); `borders[f]` is how many borders bucketize raw
    dense feature f."""

    batch: int
    items: int
    users: int
    categories: int
    dim: int
    max_history: int
    max_categories: int
    borders: tuple[int, ...]
    attention: tuple[int, ...]
    top: tuple[int, ...]


FULL = SeqConfig(batch=2048, items=1_000_000, users=500_000, categories=10_000, dim=64, max_history=200,
                 max_categories=20, borders=(16, 32, 64, 100), attention=(64,), top=(256, 128, 1))
TINY = SeqConfig(batch=6, items=40, users=30, categories=12, dim=8, max_history=5, max_categories=3,
                 borders=(3, 5), attention=(8,), top=(16, 1))


class JaggedToPadded(torch.autograd.Function):
    """values [total, D] + offsets [B+1] -> [B, max_length, D], zero-padded; differentiable in values.

    ATen has no derivative for `_jagged_to_padded_dense_forward`; its inverse `_padded_dense_to_jagged_forward`
    is the backward. Sequences must not exceed `max_length` (the inverse cannot undo truncation).
    """

    @staticmethod
    def forward(ctx, values: torch.Tensor, offsets: torch.Tensor, max_length: int) -> torch.Tensor:
        ctx.save_for_backward(offsets)
        ctx.total = values.shape[0]
        return torch.ops.aten._jagged_to_padded_dense_forward(values, [offsets], [max_length], 0.0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (offsets,) = ctx.saved_tensors
        return torch.ops.aten._padded_dense_to_jagged_forward(grad, [offsets], ctx.total), None, None


class BucketizedEmbedding(nn.Module):
    """A raw dense feature bucketized by sorted borders, each bucket an embedding row."""

    def __init__(self, borders: torch.Tensor, dim: int):
        super().__init__()
        self.register_buffer("borders", borders)
        self.embedding = nn.Embedding(len(borders) + 1, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(torch.bucketize(x, self.borders))


class TargetAttention(nn.Module):
    """DIN-style pooling: an MLP scores each history item against the target; softmax over valid positions."""

    def __init__(self, dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.score = mlp([4 * dim, *hidden, 1], last_activation=False)

    def forward(self, history: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        t = target.unsqueeze(1).expand_as(history)
        scores = self.score(torch.cat([history, t, history - t, history * t], dim=-1)).squeeze(-1)
        valid = torch.arange(history.shape[1], device=history.device) < lengths.unsqueeze(1)
        # A finite floor, not -inf: an empty history gets uniform weights over zero padding, so 0, not NaN.
        weights = torch.softmax(scores.masked_fill(~valid, torch.finfo(scores.dtype).min), dim=1)
        return (weights.unsqueeze(-1) * history).sum(dim=1)


class SequenceModel(nn.Module):
    """See the module docstring."""

    def __init__(self, cfg: SeqConfig):
        super().__init__()
        self.max_history, self.users = cfg.max_history, cfg.users
        self.items = nn.Embedding(cfg.items, cfg.dim)
        self.user_table = nn.Embedding(cfg.users, cfg.dim)
        self.category_table = nn.Embedding(cfg.categories, cfg.dim)
        self.buckets = nn.ModuleList(
            BucketizedEmbedding(torch.logspace(-1, 3, n), cfg.dim) for n in cfg.borders)
        self.attention = TargetAttention(cfg.dim, cfg.attention)
        features = cfg.dim * (4 + len(cfg.borders)) + len(cfg.borders)
        self.top = mlp([features, *cfg.top], last_activation=False)

    def forward(self, raw_dense: torch.Tensor, user_ids: torch.Tensor, history: torch.Tensor,
                history_offsets: torch.Tensor, target: torch.Tensor, categories: torch.Tensor,
                category_lengths: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        user_rows = ((user_ids * HASH_MULTIPLIER) >> HASH_SHIFT) % self.users
        buckets = [b(x) for x, b in zip(raw_dense, self.buckets)]
        padded = JaggedToPadded.apply(self.items(history), history_offsets, self.max_history)
        target_emb = self.items(target)
        interest = self.attention(padded, history_offsets[1:] - history_offsets[:-1], target_emb)
        category_sum = torch.segment_reduce(self.category_table(categories), "sum", lengths=category_lengths)
        x = torch.cat([interest, target_emb, self.user_table(user_rows), category_sum, *buckets,
                       torch.log1p(raw_dense).t()], dim=1)
        return F.binary_cross_entropy_with_logits(self.top(x).squeeze(1), labels)


def _jagged(lengths: torch.Tensor, rows: int, g: torch.Generator) -> torch.Tensor:
    return torch.randint(0, rows, (int(lengths.sum()),), generator=g)


def make_inputs(cfg: SeqConfig, device: torch.device | str, seed: int = 0) -> tuple:
    """Random raw features for `cfg.batch` users (see SeqConfig for the jagged lengths)."""
    g = torch.Generator().manual_seed(seed)
    history_lengths = torch.randint(0, cfg.max_history + 1, (cfg.batch,), generator=g)
    category_lengths = torch.randint(0, cfg.max_categories + 1, (cfg.batch,), generator=g)
    history_lengths[0] = category_lengths[0] = 0
    history_offsets = torch.cat([torch.zeros(1, dtype=torch.long), history_lengths.cumsum(0)])
    raw_dense = torch.empty(len(cfg.borders), cfg.batch).log_normal_(1.0, 2.0, generator=g)
    inputs = (raw_dense, torch.randint(0, 1 << 40, (cfg.batch,), generator=g), _jagged(history_lengths, cfg.items, g),
              history_offsets, torch.randint(0, cfg.items, (cfg.batch,), generator=g),
              _jagged(category_lengths, cfg.categories, g), category_lengths,
              torch.randint(0, 2, (cfg.batch,), generator=g).float())
    return tuple(t.to(device) for t in inputs)


def build(cfg: SeqConfig, device: torch.device | str) -> tuple[nn.Module, tuple]:
    torch.manual_seed(0)
    return SequenceModel(cfg).to(device), make_inputs(cfg, device)


def seq(device: torch.device | str = "cuda") -> tuple[nn.Module, tuple]:
    """The sequence model at batch 2048: histories of 0..200 items from 1M x 64, 500k hashed user rows,
    10k categories (0..20 per user), 4 bucketized dense features, attention MLP 256-64-1, top MLP 388-256-128-1."""
    return build(FULL, device)


def seq_tiny(device: torch.device | str = "cpu") -> tuple[nn.Module, tuple]:
    """`seq`'s structure at test size: batch 6, histories of 0..5 items, 2 bucketized features."""
    return build(TINY, device)
