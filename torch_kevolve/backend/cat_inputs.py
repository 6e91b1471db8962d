"""How Inductor should lower the concatenations around kevolve's batched embedding bags.

The per-table tensors of one `kevolve::embedding_bags` call (and, in its backward, each table's gradient,
indices and offsets, which the stacked backward concatenates) reach `cat` and `stack` as views of one buffer at
different offsets. Past `max_pointwise_cat_inputs` (8) inputs Inductor copies each input by a kernel of its own,
and each view's offset is a constant of its kernel: on the H200 a 26-table DLRM then compiled and loaded 104 such
kernels (159 in all against Inductor's 23 on the same model; benchmarks/results/compile-time-dlrm-h200.json).
With the limits raised to the widest call's tables plus one (the DLRM's dense slot), Inductor's own rules still
decide (no reductions recomputed, no multi-consumer inputs inlined), but a concatenation of the tables is one
pointwise kernel with masked loads.
"""
from __future__ import annotations

import torch
import torch._inductor.config as inductor_config

from ..patterns import ops  # noqa: F401  (registers the kevolve pattern ops)

BATCHED_OPS = (torch.ops.kevolve.embedding_bags.default,)
LIMITS = ("max_pointwise_cat_inputs", "max_complex_pointwise_cat_inputs")


def cat_patches(gm: torch.fx.GraphModule) -> dict[str, int]:
    """Inductor config patches for `gm` (after the pattern rewrite): each of LIMITS this torch has, raised to
    the widest batched call's tables + 1 where that is above it; none when no call is that wide."""
    widest = max((len(node.args[0]) for node in gm.graph.nodes if node.target in BATCHED_OPS), default=0)
    return {name: widest + 1 for name in LIMITS
            if hasattr(inductor_config, name) and widest + 1 > getattr(inductor_config, name)}
