"""Epilogue patterns of post-grad ATen graphs: a product and the pointwise ops after it that one kernel can
apply before storing the product's tile. Found after autograd (in Inductor's graphs), so the pattern ops
standing for them need no autograd; an unclaimed match is simply left as it is.

MBDT's bucket ids: add(minimum(searchsorted(boundaries, clone(view of x)), lengths), offsets), with per-row
[rows, 1] columns, fused with the transposing copy before it (kevolve::bucketize_clamp_offset).

MapId's lookup: where(eq(gather(vocabulary, p), ids), gather(rows, p), default) with p the flattened
clamp_max(bucketize(ids, vocabulary), length - 1) (kevolve::map_id).

Batch event truncation's gather: values[ends[u] - kept[u] + p - offsets[u]] with p = arange(total) and
u = bucketize(p, offsets[1:], right=True) (kevolve::keep_last); unclaimed, it is put back as the op's meaning,
which searches the whole offsets: torch 2.11's Inductor drops the slice's offset from its search of offsets[1:].

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
    which only the pattern uses, each used by nodes before it only, so all go (in that order) once root is
    replaced; `product` is the node of the product alone (mm, addmm, searchsorted or bucketize), which a kernel
    may claim on its own instead. With `respell`, a match no kernel claims is put back as the op's meaning rather
    than left as it was (where Inductor compiles the pattern's own spelling wrong)."""

    root: Node
    nodes: tuple[Node, ...]
    overload: torch._ops.OpOverload
    args: tuple
    product: Node
    respell: bool = False


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


def _val(value):
    return value.meta.get("val") if isinstance(value, Node) else None


def _int64_column(value, rows: int) -> bool:
    val = _val(value)
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
    boundaries, values = (_val(a) for a in node.args)
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


def _flat(node, of: Node) -> bool:
    """Whether `node` is `of` or a view / reshape of it to one dimension."""
    value = _val(node)
    return (isinstance(value, torch.Tensor) and value.dim() == 1
            and (node is of or (node.target in (aten.view.default, aten.reshape.default) and node.args[0] is of)))


def _lookup(gather, positions: Node) -> Node | None:
    """The 1-D table `gather` reads at `positions` (gather(table, 0, positions)), if it is that."""
    if not (_call(gather, aten.gather.default) and gather.args[1] == 0 and gather.args[2] is positions
            and not gather.kwargs.get("sparse_grad", False)):
        return None
    table = _val(gather.args[0])
    return gather.args[0] if isinstance(table, torch.Tensor) and table.dim() == 1 else None


def _clamped_bucket(positions: Node) -> tuple[tuple[Node, ...], Node] | None:
    """(the nodes from the flattening view down to the search, the bucketize) when `positions` flattens
    clamp_max(bucketize(ids, vocabulary), length - 1), each used by the next only."""
    clamp = positions.args[0] if positions.target in (aten.view.default, aten.reshape.default) else positions
    if not (_call(clamp, aten.clamp_max.default) and (clamp is positions or _only_used_by(clamp, positions))):
        return None
    bucket = clamp.args[0]
    if not (_call(bucket, aten.bucketize.Tensor) and _only_used_by(bucket, clamp) and len(bucket.args) == 2
            and not bucket.kwargs.get("out_int32", False) and not bucket.kwargs.get("right", False)):
        return None
    vocabulary = _val(bucket.args[1])
    if not (isinstance(vocabulary, torch.Tensor) and vocabulary.dim() == 1 and vocabulary.numel() >= 1
            and clamp.args[1] == vocabulary.numel() - 1):
        return None
    return tuple(dict.fromkeys((positions, clamp, bucket))), bucket


def map_id(node: Node) -> Epilogue | None:
    """where(eq(gather(vocabulary, 0, p), ids), gather(rows, 0, p), full([], default)) ending at `node` (either
    order of the eq), p the flattened clamp_max(bucketize(ids, vocabulary), length - 1), ids and vocabulary of
    one integer dtype, rows as long as the vocabulary, default of rows' dtype, each inner node used by the
    pattern only."""
    if not (_call(node, aten.where.self) and len(node.args) == 3):
        return None
    found, hit, default = node.args
    if not (_call(found, aten.eq.Tensor) and _only_used_by(found, node) and _call(default, aten.full.default)
            and _only_used_by(default, node) and list(default.args[0]) == [] and _call(hit, aten.gather.default)
            and _only_used_by(hit, node)):
        return None
    positions = hit.args[2]
    rows = _lookup(hit, positions)
    parts = _clamped_bucket(positions) if isinstance(positions, Node) else None
    if rows is None or parts is None:
        return None
    chain, bucket = parts
    ids, vocabulary = bucket.args
    for keys, flat_ids in (found.args, found.args[::-1]):
        if _only_used_by(keys, found) and _lookup(keys, positions) is vocabulary and _flat(flat_ids, ids):
            break
    else:
        return None
    if set(positions.users) != {hit, keys} or not isinstance(default.args[1], int):
        return None
    ids_val, vocabulary_val, rows_val = _val(ids), _val(vocabulary), _val(rows)
    if not all(isinstance(v, torch.Tensor) for v in (ids_val, _val(default), _val(node))):
        return None
    if (ids_val.dtype not in (torch.int32, torch.int64) or vocabulary_val.dtype != ids_val.dtype
            or rows_val.dtype not in (torch.int32, torch.int64) or rows_val.numel() != vocabulary_val.numel()
            or _val(default).dtype != rows_val.dtype or _val(node).dtype != rows_val.dtype):
        return None
    return Epilogue(node, (node, found, keys, hit, default, *chain), torch.ops.kevolve.map_id.default,
                    (flat_ids, vocabulary, rows, default.args[1]), bucket)


def _positions(node) -> bool:
    """Whether `node` is arange(total) as traced: int64 0, 1, ..., total - 1."""
    if _call(node, torch.ops.prims.iota.default):
        return (node.kwargs.get("start") == 0 and node.kwargs.get("step") == 1
                and node.kwargs.get("dtype") == torch.int64)
    return _call(node, aten.arange.default) and len(node.args) == 1 and node.kwargs.get("dtype") == torch.int64


def _indexed(node, segment: Node) -> Node | None:
    """The tensor `node` reads at `segment` (index(tensor, [segment]), used once), if it is that."""
    if _call(node, aten.index.Tensor) and list(node.args[1]) == [segment] and len(node.users) == 1:
        return node.args[0]
    return None


def _segment_of(segment: Node, offsets: Node, position: Node) -> Node | None:
    """The view offsets[1:] when `segment` is bucketize(position, offsets[1:], right=True), int64 out."""
    if not (_call(segment, aten.bucketize.Tensor) and segment.args[0] is position
            and segment.kwargs.get("right", False) and not segment.kwargs.get("out_int32", False)):
        return None
    view, length = segment.args[1], _val(offsets).shape[0]
    if _call(view, aten.slice.Tensor) and view.args[:3] == (offsets, 0, 1) and (
            len(view.args) < 4 or view.args[3] >= length):
        return view
    return None


def keep_last(node: Node) -> Epilogue | None:
    """values[ends[u] - kept[u] + p - offsets[u]] ending at `node` (either order of the add), p = arange(total)
    and u = bucketize(p, offsets[1:], right=True), values 1-D, each inner node used by the pattern only: batch
    event truncation's gather."""
    if not (_call(node, aten.index.Tensor) and len(node.args[1]) == 1 and isinstance(node.args[1][0], Node)):
        return None
    source = node.args[1][0]
    if not (_call(source, aten.sub.Tensor) and _only_used_by(source, node) and not source.kwargs):
        return None
    shifted, at_start = source.args
    if not (_call(shifted, aten.add.Tensor) and _only_used_by(shifted, source) and not shifted.kwargs):
        return None
    for difference, position in (shifted.args, shifted.args[::-1]):
        if _call(difference, aten.sub.Tensor) and _positions(position) and not difference.kwargs:
            break
    else:
        return None
    at_end, at_kept = difference.args if _only_used_by(difference, shifted) else (None, None)
    segment = at_end.args[1][0] if _call(at_end, aten.index.Tensor) and len(at_end.args[1]) == 1 else None
    ends, kept, offsets = (_indexed(n, segment) for n in (at_end, at_kept, at_start)) if segment else (None,) * 3
    if not all(isinstance(t, Node) for t in (ends, kept, offsets)) or set(segment.users) != {at_end, at_kept, at_start}:
        return None
    view = _segment_of(segment, offsets, position)
    values = _val(node.args[0])
    if view is None or set(position.users) != {segment, shifted} or not (
            isinstance(values, torch.Tensor) and values.dim() == 1):
        return None
    inner = (source, shifted, difference, at_start, at_kept, at_end, segment)
    views = (view,) if _only_used_by(view, segment) else ()
    return Epilogue(node, (node, *inner, *views, position), torch.ops.kevolve.keep_last.default,
                    (node.args[0], ends, kept, offsets, position.args[0]), segment, respell=True)


EPILOGUES = (addmm_relu, bucketize_clamp_offset, map_id, keep_last)


def find_epilogue(node: Node) -> Epilogue | None:
    """The epilogue pattern ending at `node`, if any."""
    return next((found for match in EPILOGUES if (found := match(node)) is not None), None)
