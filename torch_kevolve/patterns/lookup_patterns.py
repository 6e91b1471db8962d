"""Pre-grad patterns of table lookups: many F.embedding_bag calls of one kind batched into one
kevolve::embedding_bags call; its pooled rows stacked (or concatenated) behind head rows as one
kevolve::embedding_bags_stack call (a DLRM interaction's input, DCN-v2's cross input), which a kernel can then fill
in place; and an F.embedding call as kevolve::embedding (for its backward op)."""
from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch.fx import Graph, Node

from . import ops  # noqa: F401  (registers the kevolve pattern ops)
from .matching import COPIED_META, Match, Pattern, call_arguments, insert_call, value_of

_POOLING_MODES = {"sum": 0, "mean": 1}


def _embedding_bag_call(node: Node) -> dict | None:
    """The arguments of an F.embedding_bag call the embedding_bags op can take (sum or mean of a 2-D float
    weight, 1-D integer indices with 1-D offsets, no max_norm, scaling by frequency, sparse gradient,
    per-sample weights or padding index), else None."""
    call = call_arguments(node, F.embedding_bag)
    if call is None:
        return None
    weight, indices, offsets = (value_of(call[k]) for k in ("weight", "input", "offsets"))
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
    batched = insert_call(graph, "call_function", torch.ops.kevolve.embedding_bags.default, args, match.root)
    pooled = []
    for t, member in enumerate(match.bindings["members"]):
        item = graph.create_node("call_function", operator.getitem, (batched, t))
        item.meta["example_value"] = batched.meta["example_value"][t]
        item.meta.update({k: member.meta[k] for k in COPIED_META if k in member.meta})
        pooled.append(item)
    for member, item in zip(match.bindings["members"][1:], pooled[1:]):
        member.replace_all_uses_with(item)
        graph.erase_node(member)
    return pooled[0]


EMBEDDING_BAGS = Pattern("embedding_bags", _match_embedding_bags, _replace_embedding_bags)


def _match_embedding(node: Node) -> Match | None:
    """An F.embedding call of a 2-D float weight that requires grad at integer indices of any shape, with no
    max_norm, scaling by frequency or sparse gradient (its backward is then aten.embedding_dense_backward)."""
    call = call_arguments(node, F.embedding)
    if call is None:
        return None
    weight, indices, padding_idx = value_of(call["weight"]), value_of(call["input"]), call["padding_idx"]
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


def _stacked_rows(node: Node) -> tuple[list, bool] | None:
    """(the rows, whether they are concatenated) of torch.stack(rows, dim=1) (or dim=-2, the same for 2-D rows) or
    torch.cat(rows, dim=1) (or dim=-1) at `node`, else None."""
    if not (node.op == "call_function" and node.target in (torch.stack, torch.cat) and node.args):
        return None
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    if dim not in ((1, -2) if node.target is torch.stack else (1, -1)) or set(node.kwargs) - {"dim"}:
        return None
    return (list(node.args[0]), node.target is torch.cat) if isinstance(node.args[0], (list, tuple)) else None


def _bags_output(row) -> tuple[Node, int] | None:
    """(the kevolve::embedding_bags call, which output) where `row` is an output of one, else None."""
    if not (isinstance(row, Node) and row.op == "call_function" and row.target is operator.getitem):
        return None
    batched, which = row.args
    return (batched, which) if getattr(batched, "target", None) is torch.ops.kevolve.embedding_bags.default else None


def _match_embedding_bags_stack(node: Node) -> Match | None:
    """torch.stack([*heads, *pooled], dim=1) (or torch.cat of them along dim 1: the stack's rows flattened) where
    pooled are the outputs 0..T-1 of one kevolve::embedding_bags call in order, read by this stack alone, and the
    heads (none or more) are tensors of the pooled rows' shape, dtype and device."""
    stacked = _stacked_rows(node)
    rows, flat = stacked if stacked else ([], False)
    first = next((i for i, row in enumerate(rows) if _bags_output(row) is not None), None)
    if first is None:
        return None
    heads, pooled = rows[:first], rows[first:]
    batched = _bags_output(pooled[0])[0]
    if [_bags_output(p) for p in pooled] != [(batched, t) for t in range(len(batched.args[0]))]:
        return None
    like = value_of(pooled[0])
    if any(len(p.users) != 1 for p in pooled) or not all(
            isinstance(h, Node) and isinstance(value_of(h), torch.Tensor) and value_of(h).shape == like.shape
            and value_of(h).dtype == like.dtype and value_of(h).device == like.device for h in heads):
        return None
    return Match(node, (node, *pooled, batched), {"heads": heads, "batched": batched, "flat": flat})


def _replace_embedding_bags_stack(graph: Graph, match: Match) -> Node:
    b = match.bindings
    stack = insert_call(graph, "call_function", torch.ops.kevolve.embedding_bags_stack.default,
                        (list(b["heads"]), *b["batched"].args), match.root)
    return insert_call(graph, "call_method", "flatten", (stack, 1), match.root) if b["flat"] else stack


EMBEDDING_BAGS_STACK = Pattern("embedding_bags_stack", _match_embedding_bags_stack, _replace_embedding_bags_stack)
