"""The keys and policies the search-quality benchmarks share: embedding-bag forward keys at DLRM-like sizes
(benchmarks.search_quality, benchmarks.landscape, benchmarks.landscape_replay)."""
from __future__ import annotations

import torch

from torch_kevolve.families import EMBEDDING_BAG
from torch_kevolve.key import Problem

GRID = [(rows, dim, dtype) for rows in (100_000, 1_000_000) for dim in (64, 128) for dtype in ("float32", "bfloat16")]
POLICIES = ("greedy", "uct", "islands")
TRITON = EMBEDDING_BAG.implementation("embedding_bag_triton")


def grid_problem(rows: int, dim: int, dtype: str, indices: int = 262_144, bag: int = 32) -> Problem:
    """The embedding-bag forward (sum, no per-sample weights) over a rows x dim table, bags of `bag`."""
    args = (torch.empty(rows, dim, dtype=getattr(torch, dtype)), torch.zeros(indices, dtype=torch.int64),
            torch.zeros(indices // bag, dtype=torch.int64), False, 0, False, None, False, -1)
    return EMBEDDING_BAG.problem(torch.ops.aten._embedding_bag_forward_only.default, args, {})


def evaluations_to(trajectory: list[tuple[int, float, float]], target: float) -> int | None:
    """The first evaluation whose best-so-far reaches `target` (None if none)."""
    return next((i for i, _, best in trajectory if best >= target), None)
