"""Epilogue patterns of post-grad ATen graphs: a product and the pointwise ops after it that one kernel can
apply before storing the product's tile. Found after autograd (in Inductor's graphs), so the pattern ops
standing for them need no autograd; an unclaimed match is simply left as it is.

A linear layer and its ReLU reach the post-grad graph in one of two spellings:
- relu(addmm(bias, a, b)), as AOTAutograd traces it (kept on CPU);
- relu(add(mm(a, b), bias)), after Inductor splits the addmm on GPUs so that the bias joins the pointwise
  kernel after the product (its post-grad pass "unfuse_bias_add_to_pointwise").
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.fx import Node

from . import ops  # noqa: F401  (registers the kevolve pattern ops)

aten = torch.ops.aten


@dataclass(frozen=True)
class Epilogue:
    """A found epilogue: `root`'s value is `overload(*args)`; `nodes` (root first) are the pattern's nodes,
    which only the pattern uses, so all go once root is replaced; `product` is the node of the product alone
    (mm or addmm), which a kernel may claim on its own instead."""

    root: Node
    nodes: tuple[Node, ...]
    overload: torch._ops.OpOverload
    args: tuple
    product: Node


def _call(node, target) -> bool:
    return isinstance(node, Node) and node.op == "call_function" and node.target is target


def _only_used_by(node: Node, user: Node) -> bool:
    return list(node.users) == [user]


def _unit(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value == 1


def _linear(node: Node) -> tuple[tuple[Node, ...], tuple] | None:
    """(the nodes, (bias, a, b)) when `node` computes bias + a @ b by addmm (beta = alpha = 1) or by
    add(mm(a, b), bias) (either order of the add, alpha 1) with the mm used by the add only."""
    if _call(node, aten.addmm.default):
        bias, a, b, *scalars = node.args
        scalars = dict(zip(("beta", "alpha"), scalars), **node.kwargs)
        return ((node,), (bias, a, b)) if all(_unit(v) for v in scalars.values()) else None
    if not (_call(node, aten.add.Tensor) and len(node.args) == 2 and all(_unit(v) for v in node.kwargs.values())):
        return None
    for product, bias in (node.args, node.args[::-1]):
        if _call(product, aten.mm.default) and isinstance(bias, Node) and _only_used_by(product, node):
            return (node, product), (bias, *product.args)
    return None


def addmm_relu(node: Node) -> Epilogue | None:
    """relu(bias + a @ b) ending at `node`, the product's value used by the relu only."""
    if not (_call(node, aten.relu.default) and isinstance(node.args[0], Node) and _only_used_by(node.args[0], node)):
        return None
    linear = _linear(node.args[0])
    if linear is None:
        return None
    nodes, args = linear
    return Epilogue(node, (node, *nodes), torch.ops.kevolve.addmm_relu.default, args, nodes[-1])


EPILOGUES = (addmm_relu,)


def find_epilogue(node: Node) -> Epilogue | None:
    """The epilogue pattern ending at `node`, if any."""
    return next((found for match in EPILOGUES if (found := match(node)) is not None), None)
