"""The pre-grad pattern pass: finds multi-node patterns in a Dynamo FX graph (torch-level IR) and replaces
each by its pattern op, so that AOTAutograd traces the op (and its backward op) instead of the pattern. (An
F.embedding call becomes kevolve::embedding for its backward op alone: see that op.)

A Pattern is data: `match(node)` recognises the pattern ending at `node` (exact structure only) and
`replace(graph, match)` inserts the call that computes the same value.
"""
from __future__ import annotations

import functools
import inspect
import operator
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch.fx import Graph, GraphModule, Node

from . import ops  # noqa: F401  (registers the kevolve pattern ops)
from .broadcast_linear import Part, broadcast_target_linear
from .score_head import score_head

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


def _cast(graph: Graph, node: Node, dtype: torch.dtype, like: Node) -> Node:
    """`node`, or node.to(dtype) where its dtype differs (the cast autocast made inside the pattern)."""
    return node if _value(node).dtype == dtype else insert_call(graph, "call_method", "to", (node, dtype), like)


def _replace_pairwise_dots(graph: Graph, match: Match) -> Node:
    b = match.bindings
    return insert_call(graph, "call_function", torch.ops.kevolve.pairwise_dots.default,
                       (_cast(graph, b["features"], b["dtype"], match.root), b["first"], b["second"]), match.root)


PAIRWISE_DOTS = Pattern("pairwise_dots", _match_pairwise_dots, _replace_pairwise_dots)

_POOLING_MODES = {"sum": 0, "mean": 1}


@functools.cache
def _signature(function) -> inspect.Signature:
    """`function`'s signature, built once per function."""
    return inspect.signature(function)


def _call_arguments(node: Node, function) -> dict | None:
    """The arguments of a call of `function` at `node` by parameter name, defaults filled in; None where `node`
    is no such call or its arguments do not bind."""
    if not (node.op == "call_function" and node.target is function):
        return None
    try:
        bound = _signature(function).bind(*node.args, **node.kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


def _embedding_bag_call(node: Node) -> dict | None:
    """The arguments of an F.embedding_bag call the embedding_bags op can take (sum or mean of a 2-D float
    weight, 1-D integer indices with 1-D offsets, no max_norm, scaling by frequency, sparse gradient,
    per-sample weights or padding index), else None."""
    call = _call_arguments(node, F.embedding_bag)
    if call is None:
        return None
    weight, indices, offsets = (_value(call[k]) for k in ("weight", "input", "offsets"))
    tensors = all(isinstance(call[k], Node) for k in ("weight", "input", "offsets"))
    if not (tensors and isinstance(weight, torch.Tensor) and weight.dim() == 2 and weight.is_floating_point()
            and isinstance(indices, torch.Tensor) and indices.dim() == 1 and isinstance(offsets, torch.Tensor)
            and offsets.dim() == 1 and not indices.is_floating_point() and not offsets.is_floating_point()):
        return None
    if (call["max_norm"] is not None or call["scale_grad_by_freq"] or call["sparse"]
            or call["per_sample_weights"] is not None or call["padding_idx"] is not None
            or call["mode"] not in _POOLING_MODES or not isinstance(call["include_last_offset"], bool)):
        return None
    call["group"] = (call["mode"], call["include_last_offset"], weight.dtype, weight.shape[1], weight.device,
                     indices.dtype, offsets.dtype)
    return call


def _match_embedding_bags(node: Node) -> Match | None:
    """Two or more F.embedding_bag calls of one kind (mode, include_last_offset, weight dtype and width,
    index dtypes, device), the first at `node`, the others later in the graph with all their inputs made
    before `node` (the batched call replaces them all at `node`)."""
    first = _embedding_bag_call(node)
    if first is None:
        return None
    before = set()
    for n in node.graph.nodes:
        if n is node:
            break
        before.add(n)
    members, calls = [node], [first]
    for n in list(node.graph.nodes)[len(before) + 1:]:
        call = _embedding_bag_call(n)
        if call is not None and call["group"] == first["group"] and all(
                call[k] in before for k in ("weight", "input", "offsets")):
            members.append(n)
            calls.append(call)
    if len(members) < 2:
        return None
    return Match(node, (node,), {"members": tuple(members), "calls": tuple(calls)})


def _replace_embedding_bags(graph: Graph, match: Match) -> Node:
    """One kevolve.embedding_bags call, each member's value taken from its output list; members other than
    the root are replaced and erased here (the pass erases the root)."""
    calls = match.bindings["calls"]
    args = tuple([c[k] for c in calls] for k in ("weight", "input", "offsets")) + (
        _POOLING_MODES[calls[0]["mode"]], calls[0]["include_last_offset"])
    batched = graph.create_node("call_function", torch.ops.kevolve.embedding_bags.default, args)
    values = [[_value(a) for a in arg] if isinstance(arg, list) else arg for arg in args]
    with _value(calls[0]["weight"]).fake_mode:
        batched.meta["example_value"] = torch.ops.kevolve.embedding_bags.default(*values)
    batched.meta.update({k: match.root.meta[k] for k in _COPIED_META if k in match.root.meta})
    pooled = []
    for t, member in enumerate(match.bindings["members"]):
        item = graph.create_node("call_function", operator.getitem, (batched, t))
        item.meta["example_value"] = batched.meta["example_value"][t]
        item.meta.update({k: member.meta[k] for k in _COPIED_META if k in member.meta})
        pooled.append(item)
    for member, item in zip(match.bindings["members"][1:], pooled[1:]):
        member.replace_all_uses_with(item)
        graph.erase_node(member)
    return pooled[0]


EMBEDDING_BAGS = Pattern("embedding_bags", _match_embedding_bags, _replace_embedding_bags)

_MATMULS = ((torch.bmm, "bmm"), (torch.matmul, "matmul"), (operator.matmul, "matmul"))


def _product_operands(node) -> tuple | None:
    """(a, b) when `node` is a matrix product of a and b (torch.bmm, torch.matmul, @, or their methods)."""
    if not (isinstance(node, Node) and len(node.args) == 2 and not node.kwargs):
        return None
    return node.args if any(_is_call(node, function, method) for function, method in _MATMULS) else None


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
    features, projection = _value(x), _value(y)
    if not (features.is_floating_point() and isinstance(projection, torch.Tensor) and projection.is_floating_point()):
        return None
    batch, rows, _ = features.shape
    if tuple(projection.shape[:-1]) not in ((rows,), (batch, rows)):
        return None
    return Match(node, (node, inner, transposed), {"features": x, "projection": y, "dtype": _value(node).dtype})


def _replace_fm_interaction(graph: Graph, match: Match) -> Node:
    b = match.bindings
    operands = tuple(_cast(graph, b[name], b["dtype"], match.root) for name in ("features", "projection"))
    return insert_call(graph, "call_function", torch.ops.kevolve.fm_interaction.default, operands, match.root)


FM_INTERACTION = Pattern("fm_interaction", _match_fm_interaction, _replace_fm_interaction)


def _match_embedding(node: Node) -> Match | None:
    """An F.embedding call of a 2-D float weight that requires grad at integer indices of any shape, with no
    max_norm, scaling by frequency or sparse gradient (its backward is then aten.embedding_dense_backward)."""
    call = _call_arguments(node, F.embedding)
    if call is None:
        return None
    weight, indices, padding_idx = _value(call["weight"]), _value(call["input"]), call["padding_idx"]
    if not (isinstance(call["weight"], Node) and isinstance(call["input"], Node) and isinstance(weight, torch.Tensor)
            and weight.dim() == 2 and weight.is_floating_point() and weight.requires_grad
            and isinstance(indices, torch.Tensor) and indices.dtype in (torch.int32, torch.int64)):
        return None
    if call["max_norm"] is not None or call["scale_grad_by_freq"] is not False or call["sparse"] is not False:
        return None
    rows = weight.shape[0]
    if padding_idx is not None and not (isinstance(padding_idx, int) and -rows <= padding_idx < rows):
        return None
    padding = -1 if padding_idx is None else padding_idx % rows  # F.embedding's normalisation
    return Match(node, (node,), {"weight": call["weight"], "indices": call["input"], "padding_idx": padding})


def _replace_embedding(graph: Graph, match: Match) -> Node:
    b = match.bindings
    return insert_call(graph, "call_function", torch.ops.kevolve.embedding.default,
                       (b["weight"], b["indices"], b["padding_idx"]), match.root)


EMBEDDING = Pattern("embedding", _match_embedding, _replace_embedding)

_SUB = (operator.sub, torch.sub, "sub")
_MUL = (operator.mul, torch.mul, "mul")


def _broadcast_row(node, history: Node) -> Node | None:
    """x where `node` is x.expand_as(history) or x.expand(*history's sizes) (-1 kept for B and D), x [B, 1, D]
    and history [B, L, D]."""
    if not (isinstance(node, Node) and node.op == "call_method" and node.args and not node.kwargs):
        return None
    x, *sizes = node.args
    row, full = _value(x), _value(history)
    if not (isinstance(row, torch.Tensor) and isinstance(full, torch.Tensor) and row.dim() == full.dim() == 3):
        return None
    if tuple(row.shape) != (full.shape[0], 1, full.shape[2]) or row.dtype != full.dtype:
        return None
    if node.target == "expand_as" and sizes == [history]:
        return x
    if node.target == "expand":
        sizes = list(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
        sizes = [_value(size) for size in sizes]
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
    if not (_is_call(cat, torch.cat, "cat") and len(cat.users) == 1 and isinstance(cat.args[0], (list, tuple))):
        return None
    dim = cat.kwargs.get("dim", cat.args[1] if len(cat.args) > 1 else 0)
    pieces, value = list(cat.args[0]), _value(cat)
    if len(cat.args) + len(cat.kwargs) > 2 or dim not in (-1, 2) or not isinstance(value, torch.Tensor):
        return None
    operands = pieces + [o for p in pieces for o in (_binary(p, _SUB) or _binary(p, _MUL) or ())]
    history = next((o for o in operands if isinstance(o, Node) and _binary(o, _SUB) is None
                    and _binary(o, _MUL) is None and o.target not in ("expand", "expand_as")), None)
    broadcast, target = next(((o, row) for o in operands if (row := _broadcast_row(o, history)) is not None),
                             (None, None))
    if broadcast is None or not _value(history).is_floating_point() or _value(history).dtype != value.dtype:
        return None
    parts = [_part(p, history, broadcast) for p in pieces]
    inner = list(dict.fromkeys(p for p in pieces if p is not history and p is not broadcast))
    if None in parts or any(len(p.users) != 1 for p in inner) or _value(node).dtype != value.dtype:
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
    value, rows = _value(x), _value(weight)
    if not (isinstance(value, torch.Tensor) and isinstance(rows, torch.Tensor) and value.dim() >= 3
            and value.is_floating_point() and rows.dim() == 2 and rows.shape[0] == 1):
        return None
    if _value(node).dtype != value.dtype:
        return None
    return Match(node, (node,), {"x": x, "weight": weight, "bias": bias})


def _replace_score_head(graph: Graph, match: Match) -> Node:
    b = match.bindings
    return insert_call(graph, "call_function", score_head, (b["x"], b["weight"], b["bias"]), match.root)


SCORE_HEAD = Pattern("score_head", _match_score_head, _replace_score_head)
PATTERNS: tuple[Pattern, ...] = (PAIRWISE_DOTS, EMBEDDING_BAGS, FM_INTERACTION, EMBEDDING, BROADCAST_TARGET_LINEAR,
                                 SCORE_HEAD)


def rewrite_patterns(gm: GraphModule, patterns: Sequence[Pattern] = PATTERNS) -> list[str]:
    """Replace every match of `patterns` in `gm` (in place, recompiled); the names of the patterns replaced,
    one per match, in graph order."""
    graph = gm.graph
    replaced = []
    for node in list(graph.nodes):
        if node.graph is not graph or getattr(node, "_erased", False):  # taken by an earlier match
            continue
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
