"""The pre-grad pattern pass: finds multi-node patterns in a Dynamo FX graph (torch-level IR) and replaces
each by its pattern op, so that AOTAutograd traces the op (and its backward op) instead of the pattern.

A Pattern is data: `match(node)` recognises the pattern ending at `node` (exact structure only) and
`replace(graph, match)` inserts the call that computes the same value.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.fx import Graph, GraphModule, Node

from . import ops  # noqa: F401  (registers the kevolve pattern ops)

_COPIED_META = ("stack_trace", "nn_module_stack", "source_fn_stack")


@dataclass(frozen=True)
class Match:
    """A found pattern: `root` is the node whose value the replacement takes over; `nodes` are the
    pattern's nodes, erased (root first) once nothing else uses them; `bindings` feed `replace`."""

    root: Node
    nodes: tuple[Node, ...]
    bindings: dict


@dataclass(frozen=True)
class Pattern:
    """One multi-node pattern and the pattern op replacing it."""

    name: str
    match: Callable[[Node], Match | None]
    replace: Callable[[Graph, Match], Node]


def _value(arg):
    """The example value Dynamo recorded for a node (other arguments as they are)."""
    return arg.meta.get("example_value") if isinstance(arg, Node) else arg


def insert_call(graph: Graph, op: str, target, args: tuple, like: Node) -> Node:
    """A new node `target(*args)` (op: call_function or call_method) with its example value computed on
    the fake values of its arguments and `like`'s source metadata."""
    node = graph.create_node(op, target, args)
    values = [_value(a) for a in args]
    with next(v for v in values if isinstance(v, torch.Tensor)).fake_mode:
        node.meta["example_value"] = target(*values) if op == "call_function" else getattr(values[0], target)(*values[1:])
    node.meta.update({k: like.meta[k] for k in _COPIED_META if k in like.meta})
    return node


def _is_call(node, function, method: str) -> bool:
    return isinstance(node, Node) and (node.op == "call_function" and node.target is function
                                       or node.op == "call_method" and node.target == method)


def _transposed_of(node: Node) -> Node | None:
    """`a` when `node` is a.transpose(1, 2) (or an equivalent transpose or permute) of a 3-D tensor a."""
    if not node.args or not isinstance(node.args[0], Node):
        return None
    a, dims = node.args[0], node.args[1:]
    value = _value(a)
    if not isinstance(value, torch.Tensor) or value.dim() != 3 or node.kwargs:
        return None
    if _is_call(node, torch.transpose, "transpose") and len(dims) == 2:
        return a if all(isinstance(d, int) for d in dims) and {d % 3 for d in dims} == {1, 2} else None
    if _is_call(node, torch.permute, "permute"):
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else tuple(dims)
        return a if all(isinstance(d, int) for d in dims) and tuple(d % 3 for d in dims) == (0, 2, 1) else None
    return None


def _index_vector(arg) -> bool:
    value = _value(arg)
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
    if not (_index_vector(first) and _index_vector(second) and _value(first).shape == _value(second).shape):
        return None
    if not (_is_call(square, torch.bmm, "bmm") and len(square.args) == 2 and not square.kwargs):
        return None
    if len(square.users) != 1:
        return None
    a, transposed = square.args
    if not isinstance(transposed, Node) or _transposed_of(transposed) is not a or not _value(a).is_floating_point():
        return None
    dtype = _value(square).dtype  # differs from a's under autocast, which casts bmm's inputs
    return Match(node, (node, square, transposed), {"features": a, "first": first, "second": second, "dtype": dtype})


def _replace_pairwise_dots(graph: Graph, match: Match) -> Node:
    b = match.bindings
    features = b["features"]
    if _value(features).dtype != b["dtype"]:
        features = insert_call(graph, "call_method", "to", (features, b["dtype"]), match.root)
    return insert_call(graph, "call_function", torch.ops.kevolve.pairwise_dots.default,
                       (features, b["first"], b["second"]), match.root)


PAIRWISE_DOTS = Pattern("pairwise_dots", _match_pairwise_dots, _replace_pairwise_dots)
PATTERNS: tuple[Pattern, ...] = (PAIRWISE_DOTS,)


def rewrite_patterns(gm: GraphModule, patterns: Sequence[Pattern] = PATTERNS) -> list[str]:
    """Replace every match of `patterns` in `gm` (in place, recompiled); the names of the patterns replaced,
    one per match, in graph order."""
    graph = gm.graph
    replaced = []
    for node in list(graph.nodes):
        for pattern in patterns:
            match = pattern.match(node)
            if match is None:
                continue
            with graph.inserting_before(match.root):
                new = pattern.replace(graph, match)
            match.root.replace_all_uses_with(new)
            for old in match.nodes:
                if not old.users:
                    graph.erase_node(old)
            replaced.append(pattern.name)
            break
    if replaced:
        graph.lint()
        gm.recompile()
    return replaced
