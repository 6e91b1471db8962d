"""A DLRM-style model: embedding bags + bottom MLP + dot interaction + top MLP + BCE loss.

Factories take a device and return `(model, inputs)` with `model(*inputs)` the training loss.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class DLRMConfig:
    """Sizes of one DLRM; `modes` cycles over the tables (DLRM proper is all "sum").

    Bags hold exactly `pooling` rows when `fixed_pooling` (every table then poses one kernel key), else
    0..2*pooling (some empty). `table_dtype` is the dtype of the embedding tables.
    """

    num_tables: int
    rows: int
    dim: int
    batch: int
    pooling: int
    dense_features: int
    bottom: tuple[int, ...]
    top: tuple[int, ...]
    modes: tuple[str, ...] = ("sum",)
    fixed_pooling: bool = False
    table_dtype: torch.dtype = torch.float32


SMALL = DLRMConfig(num_tables=4, rows=2000, dim=16, batch=64, pooling=8, dense_features=13,
                   bottom=(64, 16), top=(64, 32, 1), modes=("sum", "mean", "max", "sum"))
# MLPerf-style sizes: 26 tables of 100k x 128, 13 dense features; the top MLP takes 128 + 27*26/2 = 479.
FULL = DLRMConfig(num_tables=26, rows=100_000, dim=128, batch=4096, pooling=20, dense_features=13,
                  bottom=(512, 256, 128), top=(1024, 1024, 512, 256, 1), fixed_pooling=True)
TINY = DLRMConfig(num_tables=3, rows=64, dim=8, batch=8, pooling=2, dense_features=5, bottom=(16, 8),
                  top=(16, 8, 1), fixed_pooling=True)


def mlp(sizes: list[int], last_activation: bool) -> nn.Sequential:
    """Linear layers through `sizes`, ReLU between them (and after the last if `last_activation`)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def embedding_bags(cfg: DLRMConfig) -> nn.ModuleList:
    """One EmbeddingBag per table, modes cycling over `cfg.modes`."""
    return nn.ModuleList(
        nn.EmbeddingBag(cfg.rows, cfg.dim, mode=cfg.modes[t % len(cfg.modes)], dtype=cfg.table_dtype)
        for t in range(cfg.num_tables)
    )


class DLRM(nn.Module):
    """Sparse features pooled by EmbeddingBags, dense features by the bottom MLP, pairwise dots on top."""

    def __init__(self, cfg: DLRMConfig):
        super().__init__()
        if cfg.bottom[-1] != cfg.dim:
            raise ValueError("the bottom MLP must end at the embedding dim")
        self.embeddings = embedding_bags(cfg)
        self.bottom = mlp([cfg.dense_features, *cfg.bottom], last_activation=True)
        n = cfg.num_tables + 1
        self.register_buffer("pairs", torch.tril_indices(n, n, offset=-1), persistent=False)
        self.top = mlp([cfg.dim + n * (n - 1) // 2, *cfg.top], last_activation=False)

    def forward(self, dense: torch.Tensor, indices: list[torch.Tensor], offsets: list[torch.Tensor],
                labels: torch.Tensor) -> torch.Tensor:
        x = self.bottom(dense)
        pooled = [emb(i, o) for emb, i, o in zip(self.embeddings, indices, offsets)]
        features = torch.stack([x, *pooled], dim=1)
        dots = torch.bmm(features, features.transpose(1, 2))[:, self.pairs[0], self.pairs[1]]
        logits = self.top(torch.cat([x, dots], dim=1)).squeeze(1)
        return F.binary_cross_entropy_with_logits(logits, labels)


class Autocast(nn.Module):
    """Runs `model` under torch.autocast(`dtype`) (mixed precision: parameters keep their dtype)."""

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, *inputs):
        with torch.autocast(device_type=next(self.model.parameters()).device.type, dtype=self.dtype):
            return self.model(*inputs)


def make_inputs(cfg: DLRMConfig, device: torch.device | str, seed: int = 0) -> tuple:
    """A batch of bags (see DLRMConfig for their lengths) of random rows, dense features and labels."""
    g = torch.Generator().manual_seed(seed)
    indices, offsets = [], []
    for _ in range(cfg.num_tables):
        if cfg.fixed_pooling:
            lengths = torch.full((cfg.batch,), cfg.pooling)
        else:
            lengths = torch.randint(0, 2 * cfg.pooling + 1, (cfg.batch,), generator=g)
        offsets.append(torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]]).to(device))
        indices.append(torch.randint(0, cfg.rows, (int(lengths.sum()),), generator=g).to(device))
    dense = torch.randn(cfg.batch, cfg.dense_features, generator=g).to(device)
    labels = torch.randint(0, 2, (cfg.batch,), generator=g).float().to(device)
    return dense, indices, offsets, labels


def build(cfg: DLRMConfig, device: torch.device | str) -> tuple[nn.Module, tuple]:
    torch.manual_seed(0)
    return DLRM(cfg).to(device), make_inputs(cfg, device)


def build_bf16(cfg: DLRMConfig, device: torch.device | str) -> tuple[nn.Module, tuple]:
    """`cfg` with bf16 tables (pooled in bf16, gradients in bf16) and the rest under bf16 autocast: fp32 MLP
    weights cast to bf16 for the matmuls, interaction bmm in bf16, BCE loss in fp32 (autocast's fp32 list)."""
    model, inputs = build(dataclasses.replace(cfg, table_dtype=torch.bfloat16), device)
    return Autocast(model, torch.bfloat16), inputs


def small_dlrm(device: torch.device | str = "cpu") -> tuple[nn.Module, tuple]:
    """The example model of the README: 4 tables x 2000 rows x 16, batch 64."""
    return build(SMALL, device)


def dlrm(device: torch.device | str = "cuda") -> tuple[nn.Module, tuple]:
    """DLRM: 26 fp32 tables x 100k rows x 128, bags of exactly 20, batch 4096, bottom MLP 13-512-256-128,
    dot interaction, top MLP 479-1024-1024-512-256-1, BCE."""
    return build(FULL, device)


def dlrm_bf16(device: torch.device | str = "cuda") -> tuple[nn.Module, tuple]:
    """`dlrm` in mixed precision: bf16 tables (pooled and their gradients in bf16); dense features, labels and
    MLP weights fp32, the MLPs and the interaction run under bf16 autocast; loss in fp32."""
    return build_bf16(FULL, device)


def dlrm_tiny(device: torch.device | str = "cpu") -> tuple[nn.Module, tuple]:
    """`dlrm`'s structure at test size: 3 tables x 64 x 8, bags of exactly 2, batch 8."""
    return build(TINY, device)


def dlrm_bf16_tiny(device: torch.device | str = "cpu") -> tuple[nn.Module, tuple]:
    """`dlrm_bf16`'s structure and dtypes at `dlrm_tiny`'s sizes."""
    return build_bf16(TINY, device)
