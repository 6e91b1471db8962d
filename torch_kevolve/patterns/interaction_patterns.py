"""Pre-grad patterns of feature interactions: DLRM's dot interaction (bmm(T, Tᵀ) and its lower-triangle gather,
kevolve::pairwise_dots) and WuKong's factorization-machine block (X (Xᵀ Y), kevolve::fm_interaction)."""
from __future__ import annotations

import operator

import torch
from torch.fx import Graph, Node

from . import ops  # noqa: F401  (registers the kevolve pattern ops)
from .matching import Match, Pattern, insert_call, is_call, value_of


def _transposed_of(node: Node) -> Node | None:
    """`a` when `node` is a.transpose(1, 2) (or an equivalent transpose or permute) of a 3-D tensor a."""
    if not node.args or not isinstance(node.args[0], Node):
        return None
    a, dims = node.args[0], node.args[1:]
    value = value_of(a)
    if not isinstance(value, torch.Tensor) or value.dim() != 3 or node.kwargs:
        return None
    if is_call(node, torch.transpose, "transpose") and len(dims) == 2:
        return a if all(isinstance(d, int) for d in dims) and {d % 3 for d in dims} == {1, 2} else None
    if is_call(node, torch.permute, "permute"):
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else tuple(dims)
        return a if all(isinstance(d, int) for d in dims) and tuple(d % 3 for d in dims) == (0, 2, 1) else None
    return None


def _index_vector(arg) -> bool:
    value = value_of(arg)
    return (isinstance(arg, Node) and isinstance(value, torch.Tensor) and value.dim() == 1
            and value.dtype in (torch.int32, torch.int64))


def _match_pairwise_dots(node: Node) -> Match | None:
    """bmm(a, a.transpose(1, 2))[:, first, second] with a 3-D float a, the bmm used by the gather only,
    and first, second 1-D integer tensors of one length."""
    if not (node.op == "call_function" and node.target is operator.getitem and len(node.args) == 2):
        return None
    square, index = node.args
    if not (isinstance(index, tuple) and len(index) == 3 and index[0] == slice(None)):
        return None
    first, second = index[1:]
    if not (_index_vector(first) and _index_vector(second) and value_of(first).shape == value_of(second).shape):
        return None
    if not (is_call(square, torch.bmm, "bmm") and len(square.args) == 2 and not square.kwargs):
        return None
    if len(square.users) != 1:
        return None
    a, transposed = square.args
    if not isinstance(transposed, Node) or _transposed_of(transposed) is not a or not value_of(a).is_floating_point():
        return None
    dtype = value_of(square).dtype  # differs from a's under autocast, which casts bmm's inputs
    return Match(node, (node, square, transposed), {"features": a, "first": first, "second": second, "dtype": dtype})


def _cast(graph: Graph, node: Node, dtype: torch.dtype, like: Node) -> Node:
    """`node`, or node.to(dtype) where its dtype differs (the cast autocast made inside the pattern)."""
    return node if value_of(node).dtype == dtype else insert_call(graph, "call_method", "to", (node, dtype), like)


def _replace_pairwise_dots(graph: Graph, match: Match) -> Node:
    b = match.bindings
    return insert_call(graph, "call_function", torch.ops.kevolve.pairwise_dots.default,
                       (_cast(graph, b["features"], b["dtype"], match.root), b["first"], b["second"]), match.root)


PAIRWISE_DOTS = Pattern("pairwise_dots", _match_pairwise_dots, _replace_pairwise_dots)

_MATMULS = ((torch.bmm, "bmm"), (torch.matmul, "matmul"), (operator.matmul, "matmul"))


def _product_operands(node) -> tuple | None:
    """(a, b) when `node` is a matrix product of a and b (torch.bmm, torch.matmul, @, or their methods)."""
    if not (isinstance(node, Node) and len(node.args) == 2 and not node.kwargs):
        return None
    return node.args if any(is_call(node, function, method) for function, method in _MATMULS) else None


def _match_fm_interaction(node: Node) -> Match | None:
    """x @ (x.transpose(1, 2) @ y) in any spelling of the products, with the same 3-D float x [B, N, D] both
    times, y [N, K] or [B, N, K] (no broadcast batch) and the inner product used by the outer one only."""
    outer = _product_operands(node)
    if outer is None:
        return None
    x, inner = outer
    operands = _product_operands(inner)
    if operands is None or len(inner.users) != 1:
        return None
    transposed, y = operands
    if not isinstance(transposed, Node) or _transposed_of(transposed) is not x or not isinstance(y, Node):
        return None
    features, projection = value_of(x), value_of(y)
    if not (features.is_floating_point() and isinstance(projection, torch.Tensor) and projection.is_floating_point()):
        return None
    batch, rows, _ = features.shape
    if tuple(projection.shape[:-1]) not in ((rows,), (batch, rows)):
        return None
    return Match(node, (node, inner, transposed), {"features": x, "projection": y, "dtype": value_of(node).dtype})


def _replace_fm_interaction(graph: Graph, match: Match) -> Node:
    b = match.bindings
    operands = tuple(_cast(graph, b[name], b["dtype"], match.root) for name in ("features", "projection"))
    return insert_call(graph, "call_function", torch.ops.kevolve.fm_interaction.default, operands, match.root)


FM_INTERACTION = Pattern("fm_interaction", _match_fm_interaction, _replace_fm_interaction)
