"""DCN-v2: DLRM's embedding bags and dense MLP, then full-rank cross layers and a deep MLP, BCE loss.

Factories take a device and return `(model, inputs)` with `model(*inputs)` the training loss; the inputs are
DLRM's (`dlrm.make_inputs`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dlrm import DLRMConfig, embedding_bags, make_inputs, mlp


@dataclass(frozen=True)
class DCNv2Config(DLRMConfig):
    """DLRM's sizes, with `bottom` the dense MLP and `top` the deep MLP after the `cross_layers` cross layers
    (ending at 1)."""

    cross_layers: int = 3


FULL = DCNv2Config(num_tables=26, rows=100_000, dim=128, batch=4096, pooling=20, dense_features=13,
                   bottom=(512, 256, 128), top=(1024, 1024, 512, 1), fixed_pooling=True)
TINY = DCNv2Config(num_tables=3, rows=64, dim=8, batch=8, pooling=2, dense_features=5, bottom=(16, 8),
                   top=(16, 1), fixed_pooling=True, cross_layers=2)


class CrossLayer(nn.Module):
    """x_{l+1} = x0 * (W x_l + b) + x_l with a full-rank W."""

    def __init__(self, width: int):
        super().__init__()
        self.linear = nn.Linear(width, width)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * self.linear(x) + x


class DCNv2(nn.Module):
    """x0 = [dense MLP output, pooled embeddings]; cross layers on x0; the deep MLP gives the logit."""

    def __init__(self, cfg: DCNv2Config):
        super().__init__()
        self.embeddings = embedding_bags(cfg)
        self.bottom = mlp([cfg.dense_features, *cfg.bottom], last_activation=True)
        width = cfg.bottom[-1] + cfg.dim * cfg.num_tables
        self.cross = nn.ModuleList(CrossLayer(width) for _ in range(cfg.cross_layers))
        self.deep = mlp([width, *cfg.top], last_activation=False)

    def forward(self, dense: torch.Tensor, indices: list[torch.Tensor], offsets: list[torch.Tensor],
                labels: torch.Tensor) -> torch.Tensor:
        pooled = [emb(i, o) for emb, i, o in zip(self.embeddings, indices, offsets)]
        x0 = torch.cat([self.bottom(dense), *pooled], dim=1)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        logits = self.deep(x).squeeze(1)
        return F.binary_cross_entropy_with_logits(logits, labels)


def build(cfg: DCNv2Config, device: torch.device | str) -> tuple[nn.Module, tuple]:
    torch.manual_seed(0)
    return DCNv2(cfg).to(device), make_inputs(cfg, device)


def dcnv2(device: torch.device | str = "cuda") -> tuple[nn.Module, tuple]:
    """DCN-v2: 26 fp32 tables x 100k x 128, bags of exactly 20, batch 4096, dense MLP 13-512-256-128,
    3 full-rank cross layers of width 3456, deep MLP 3456-1024-1024-512-1, BCE."""
    return build(FULL, device)


def dcnv2_tiny(device: torch.device | str = "cpu") -> tuple[nn.Module, tuple]:
    """`dcnv2`'s structure at test size: 3 tables x 64 x 8, bags of 2, batch 8, 2 cross layers of width 32."""
    return build(TINY, device)
