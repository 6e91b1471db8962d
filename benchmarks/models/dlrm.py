"""A DLRM-style model: embedding bags + bottom MLP + dot interaction + top MLP + BCE loss.

Factories take a device and return `(model, inputs)` with `model(*inputs)` the training loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class DLRMConfig:
    """Sizes of one DLRM; `modes` cycles over the tables (DLRM proper is all "sum")."""

    num_tables: int
    rows: int
    dim: int
    batch: int
    pooling: int
    dense_features: int
    bottom: tuple[int, ...]
    top: tuple[int, ...]
    modes: tuple[str, ...] = ("sum",)


SMALL = DLRMConfig(num_tables=4, rows=2000, dim=16, batch=64, pooling=8, dense_features=13,
                   bottom=(64, 16), top=(64, 32, 1), modes=("sum", "mean", "max", "sum"))


def _mlp(sizes: list[int], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DLRM(nn.Module):
    """Sparse features pooled by EmbeddingBags, dense features by the bottom MLP, pairwise dots on top."""

    def __init__(self, cfg: DLRMConfig):
        super().__init__()
        if cfg.bottom[-1] != cfg.dim:
            raise ValueError("the bottom MLP must end at the embedding dim")
        self.embeddings = nn.ModuleList(
            nn.EmbeddingBag(cfg.rows, cfg.dim, mode=cfg.modes[t % len(cfg.modes)]) for t in range(cfg.num_tables)
        )
        self.bottom = _mlp([cfg.dense_features, *cfg.bottom], last_activation=True)
        n = cfg.num_tables + 1
        self.register_buffer("pairs", torch.tril_indices(n, n, offset=-1), persistent=False)
        self.top = _mlp([cfg.dim + n * (n - 1) // 2, *cfg.top], last_activation=False)

    def forward(self, dense: torch.Tensor, indices: list[torch.Tensor], offsets: list[torch.Tensor],
                labels: torch.Tensor) -> torch.Tensor:
        x = self.bottom(dense)
        pooled = [emb(i, o) for emb, i, o in zip(self.embeddings, indices, offsets)]
        features = torch.stack([x, *pooled], dim=1)
        dots = torch.bmm(features, features.transpose(1, 2))[:, self.pairs[0], self.pairs[1]]
        logits = self.top(torch.cat([x, dots], dim=1)).squeeze(1)
        return F.binary_cross_entropy_with_logits(logits, labels)


def make_inputs(cfg: DLRMConfig, device: torch.device | str, seed: int = 0) -> tuple:
    """A batch with bag lengths 0..2*pooling (some bags empty), random rows, dense features and labels."""
    g = torch.Generator().manual_seed(seed)
    indices, offsets = [], []
    for _ in range(cfg.num_tables):
        lengths = torch.randint(0, 2 * cfg.pooling + 1, (cfg.batch,), generator=g)
        offsets.append(torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]]).to(device))
        indices.append(torch.randint(0, cfg.rows, (int(lengths.sum()),), generator=g).to(device))
    dense = torch.randn(cfg.batch, cfg.dense_features, generator=g).to(device)
    labels = torch.randint(0, 2, (cfg.batch,), generator=g).float().to(device)
    return dense, indices, offsets, labels


def build(cfg: DLRMConfig, device: torch.device | str) -> tuple[nn.Module, tuple]:
    torch.manual_seed(0)
    return DLRM(cfg).to(device), make_inputs(cfg, device)


def small_dlrm(device: torch.device | str = "cpu") -> tuple[nn.Module, tuple]:
    """The example model of the README: 4 tables x 2000 rows x 16, batch 64."""
    return build(SMALL, device)
