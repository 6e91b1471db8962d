"""How Inductor should lower the concatenations around kevolve's batched embedding bags.

The per-table tensors of one `kevolve::embedding_bags` call (or `kevolve::embedding_bags_stack`, whose meaning
holds one where no kernel fills the stack; and, in its backward, each table's gradient,
indices and offsets, which the stacked backward concatenates) reach `cat` and `stack` as views of one buffer at
different offsets, or as small pointwise expressions of them. Past `max_pointwise_cat_inputs` (8) inputs, or past
8 inputs of more than two operations each (a limit torch 2.11 hard-codes), Inductor copies each input by a kernel
of its own, and each view's offset is a constant of its kernel: on the H200 a warm compile of the 26-table DLRM
loaded 104 such kernels (159 in all, against Inductor's 23 on the same model; benchmarks/results/
compile-time-dlrm-h200.json). Raising the limits to the widest call's tables plus one (the DLRM's dense slot)
made the gradients' concatenation one kernel, not the others (134 kernels). So for graphs on a GPU with such a
call, every concatenation is lowered as one pointwise kernel with masked loads (`force_pointwise_cat`); on CPU,
where Inductor always copies input by input, the limits alone are raised.
"""
from __future__ import annotations

import torch
import torch._inductor.config as inductor_config
from torch.fx import Node

from ..patterns import ops  # noqa: F401  (registers the kevolve pattern ops)

BATCHED_OPS = {  # the batched calls, and the position of their list of tables
    torch.ops.kevolve.embedding_bags.default: 0,
    torch.ops.kevolve.embedding_bags_stack.default: 1,
}
LIMITS = ("max_pointwise_cat_inputs", "max_complex_pointwise_cat_inputs")
WIDE = 8  # tables past which a batched call's concatenations are lowered as one kernel


def _tables(node: Node) -> list:
    return node.args[BATCHED_OPS[node.target]]


def _on_gpu(node: Node) -> bool:
    first = _tables(node)[0]
    value = first.meta.get("example_value", first.meta.get("val")) if isinstance(first, Node) else None
    return isinstance(value, torch.Tensor) and value.device.type != "cpu"


def cat_patches(gm: torch.fx.GraphModule) -> dict:
    """Inductor config patches for `gm` (after the pattern rewrite): none unless a batched call has more than
    WIDE tables; then each of LIMITS this torch has raised to the widest call's tables + 1, and
    `force_pointwise_cat` where such a call runs on a GPU."""
    wide = [node for node in gm.graph.nodes if node.target in BATCHED_OPS and len(_tables(node)) > WIDE]
    if not wide:
        return {}
    limit = max(len(_tables(node)) for node in wide) + 1
    patches: dict = {name: max(limit, getattr(inductor_config, name)) for name in LIMITS
                     if hasattr(inductor_config, name)}
    if any(_on_gpu(node) for node in wide):
        patches["force_pointwise_cat"] = True
    return patches
