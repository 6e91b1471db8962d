"""Pre-grad patterns of linear layers over sequences: a target attention's first layer over the concatenation
of history and target parts (broadcast_linear) and a one-output score head (score_head)."""
from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch.fx import Graph, Node

from .broadcast_linear import Part, broadcast_target_linear
from .matching import Match, Pattern, insert_call, is_call, value_of
from .score_head import score_head

_SUB = (operator.sub, torch.sub, "sub")
_MUL = (operator.mul, torch.mul, "mul")


def _broadcast_row(node, history: Node) -> Node | None:
    """x where `node` is x.expand_as(history) or x.expand(*history's sizes) (-1 kept for B and D), x [B, 1, D]
    and history [B, L, D]."""
    if not (isinstance(node, Node) and node.op == "call_method" and node.args and not node.kwargs):
        return None
    x, *sizes = node.args
    row, full = value_of(x), value_of(history)
    if not (isinstance(row, torch.Tensor) and isinstance(full, torch.Tensor) and row.dim() == full.dim() == 3):
        return None
    if tuple(row.shape) != (full.shape[0], 1, full.shape[2]) or row.dtype != full.dtype:
        return None
    if node.target == "expand_as" and sizes == [history]:
        return x
    if node.target == "expand":
        sizes = list(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
        sizes = [value_of(size) for size in sizes]
        keeps = (-1, None, -1)  # -1 keeps x's size, right for B and D
        matching = len(sizes) == 3 and all(size in (n, keep) for size, n, keep in zip(sizes, full.shape, keeps))
        return x if matching else None
    return None


def _binary(node, operations) -> tuple[Node, Node] | None:
    """(a, b) where `node` is a <operation> b by one of `operations` (function or method name), no other arguments."""
    if not (isinstance(node, Node) and len(node.args) == 2 and not node.kwargs):
        return None
    function, torch_function, method = operations
    called = node.op == "call_function" and node.target in (function, torch_function)
    return tuple(node.args) if called or node.op == "call_method" and node.target == method else None


def _part(node, history: Node, broadcast: Node) -> Part | None:
    """The coefficients (of h, t, h*t) of a cat part that is h, t, h - t, t - h, h * t or t * h."""
    if node is history or node is broadcast:
        return (1, 0, 0) if node is history else (0, 1, 0)
    if (operands := _binary(node, _SUB)) in ((history, broadcast), (broadcast, history)):
        return (1, -1, 0) if operands[0] is history else (-1, 1, 0)
    return (0, 0, 1) if _binary(node, _MUL) in ((history, broadcast), (broadcast, history)) else None


def _linear_call(node: Node) -> tuple | None:
    """(input, weight, bias) of an F.linear call with Node operands (bias None or a Node)."""
    if not (node.op == "call_function" and node.target is F.linear) or set(node.kwargs) - {"bias"}:
        return None
    args = [*node.args, node.kwargs["bias"]] if "bias" in node.kwargs else list(node.args)
    if not 2 <= len(args) <= 3:
        return None
    x, weight, bias = (*args, None)[:3]
    if not (isinstance(x, Node) and isinstance(weight, Node) and (bias is None or isinstance(bias, Node))):
        return None
    return x, weight, bias


def _match_broadcast_target_linear(node: Node) -> Match | None:
    """F.linear(cat([parts], -1), weight, bias) where the cat, used by the linear only, joins parts of one
    history h [B, L, D] and one target row t = x.expand_as(h) (x [B, 1, D]), each part h, t, h - t, t - h, h * t
    or t * h used by the cat only (t may be used elsewhere), and the layer's dtype is its input's (no autocast)."""
    call = _linear_call(node)
    if call is None:
        return None
    cat, weight, bias = call
    if not (is_call(cat, torch.cat, "cat") and len(cat.users) == 1 and isinstance(cat.args[0], (list, tuple))):
        return None
    dim = cat.kwargs.get("dim", cat.args[1] if len(cat.args) > 1 else 0)
    pieces, value = list(cat.args[0]), value_of(cat)
    if len(cat.args) + len(cat.kwargs) > 2 or dim not in (-1, 2) or not isinstance(value, torch.Tensor):
        return None
    operands = pieces + [o for p in pieces for o in (_binary(p, _SUB) or _binary(p, _MUL) or ())]
    history = next((o for o in operands if isinstance(o, Node) and _binary(o, _SUB) is None
                    and _binary(o, _MUL) is None and o.target not in ("expand", "expand_as")), None)
    broadcast, target = next(((o, row) for o in operands if (row := _broadcast_row(o, history)) is not None),
                             (None, None))
    if broadcast is None or not value_of(history).is_floating_point() or value_of(history).dtype != value.dtype:
        return None
    parts = [_part(p, history, broadcast) for p in pieces]
    inner = list(dict.fromkeys(p for p in pieces if p is not history and p is not broadcast))
    if None in parts or any(len(p.users) != 1 for p in inner) or value_of(node).dtype != value.dtype:
        return None
    return Match(node, (node, cat, *inner), {"history": history, "target": target, "weight": weight, "bias": bias,
                                             "parts": tuple(parts)})


def _replace_broadcast_target_linear(graph: Graph, match: Match) -> Node:
    b = match.bindings
    return insert_call(graph, "call_function", broadcast_target_linear,
                       (b["history"], b["target"], b["weight"], b["bias"], b["parts"]), match.root)


BROADCAST_TARGET_LINEAR = Pattern("broadcast_target_linear", _match_broadcast_target_linear,
                                  _replace_broadcast_target_linear)


def _match_score_head(node: Node) -> Match | None:
    """F.linear(x, weight, bias) of one output (weight [1, K]) over a sequence: x of 3 or more dims, float, the
    layer's dtype x's (no autocast)."""
    call = _linear_call(node)
    if call is None:
        return None
    x, weight, bias = call
    value, rows = value_of(x), value_of(weight)
    if not (isinstance(value, torch.Tensor) and isinstance(rows, torch.Tensor) and value.dim() >= 3
            and value.is_floating_point() and rows.dim() == 2 and rows.shape[0] == 1):
        return None
    if value_of(node).dtype != value.dtype:
        return None
    return Match(node, (node,), {"x": x, "weight": weight, "bias": bias})


def _replace_score_head(graph: Graph, match: Match) -> Node:
    b = match.bindings
    return insert_call(graph, "call_function", score_head, (b["x"], b["weight"], b["bias"]), match.root)


SCORE_HEAD = Pattern("score_head", _match_score_head, _replace_score_head)
