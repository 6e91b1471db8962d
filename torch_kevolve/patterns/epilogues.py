"""Epilogue patterns of post-grad ATen graphs: a product and the pointwise ops after it that one kernel can
apply before storing the product's tile. Found after autograd (in Inductor's graphs), so the pattern ops
standing for them need no autograd; an unclaimed match is simply left as it is.

MBDT's bucket ids: add(minimum(searchsorted(boundaries, clone(view of x)), lengths), offsets), with per-row
[rows, 1] columns, fused with the transposing copy before it (kevolve::bucketize_clamp_offset).

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
    which only the pattern uses, each used by the one before it only, so all go (in that order) once root is
    replaced; `product` is the node of the product alone (mm, addmm or searchsorted), which a kernel may claim
    on its own instead."""

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


def _int64_column(value, rows: int) -> bool:
    val = value.meta.get("val") if isinstance(value, Node) else None
    return isinstance(val, torch.Tensor) and val.dtype == torch.int64 and tuple(val.shape) == (rows, 1)


def _other_column(node: Node, inner: Node) -> Node | None:
    """The operand of binary `node` beside `inner` when it is an int64 [rows, 1] column, rows being inner's."""
    if len(node.args) != 2 or inner not in node.args:
        return None
    other = node.args[1] if node.args[0] is inner else node.args[0]
    return other if other is not inner and _int64_column(other, inner.meta["val"].shape[0]) else None


def _searched_values(search: Node) -> tuple[tuple[Node, ...], Node]:
    """(the copy to erase, if any; the values to read): a contiguous copy (clone) of a view used by the search
    only is read through the view instead."""
    values = search.args[1]
    if (_call(values, aten.clone.default) and _only_used_by(values, search) and isinstance(values.args[0], Node)
            and isinstance(values.args[0].target, torch._ops.OpOverload) and values.args[0].target.is_view):
        return (values,), values.args[0]
    return (), values


def _batched_search(node) -> bool:
    """searchsorted.Tensor of [rows, per_row] values in [rows, length] boundaries, int64 out, no sorter or side."""
    kwargs = node.kwargs
    if not (_call(node, aten.searchsorted.Tensor) and len(node.args) == 2 and not kwargs.get("out_int32", False)
            and kwargs.get("side") is None and kwargs.get("sorter") is None):
        return False
    boundaries, values = (a.meta.get("val") if isinstance(a, Node) else None for a in node.args)
    return (isinstance(boundaries, torch.Tensor) and isinstance(values, torch.Tensor) and boundaries.dim() == 2
            and values.dim() == 2 and boundaries.shape[0] == values.shape[0])


def bucketize_clamp_offset(node: Node) -> Epilogue | None:
    """add(minimum(searchsorted(boundaries, values), lengths), offsets) ending at `node` (either operand order,
    alpha 1), lengths and offsets int64 [rows, 1] columns, each inner value used by the next op only."""
    if not (_call(node, aten.add.Tensor) and all(_unit(v) for v in node.kwargs.values())):
        return None
    clamp = next((a for a in node.args if _call(a, aten.minimum.default) and _only_used_by(a, node)), None)
    search = next((a for a in clamp.args if _batched_search(a) and _only_used_by(a, clamp)), None) if clamp else None
    if search is None:
        return None
    lengths, offsets = _other_column(clamp, search), _other_column(node, clamp)
    if lengths is None or offsets is None:
        return None
    copies, values = _searched_values(search)
    return Epilogue(node, (node, clamp, search, *copies), torch.ops.kevolve.bucketize_clamp_offset.default,
                    (values, search.args[0], lengths, offsets, bool(search.kwargs.get("right", False))), search)


EPILOGUES = (addmm_relu, bucketize_clamp_offset)


def find_epilogue(node: Node) -> Epilogue | None:
    """The epilogue pattern ending at `node`, if any."""
    return next((found for match in EPILOGUES if (found := match(node)) is not None), None)
