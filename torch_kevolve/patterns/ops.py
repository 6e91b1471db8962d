"""The pattern ops: `kevolve::` custom ops with a fake, a plain-ATen meaning (their eager implementation and
their decomposition back to ATen) and autograd. Families implement them like ATen overloads."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .meanings import (embedding_bags_meaning, fm_interaction_backward_meaning, fm_interaction_meaning,
                       pairwise_dots_backward_meaning, pairwise_dots_meaning)


@torch.library.custom_op("kevolve::pairwise_dots", mutates_args=())
def pairwise_dots(features: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Dots of the pairs (first[p], second[p]) of each sample's rows: features [B, F, D] -> [B, P]."""
    return pairwise_dots_meaning(features, first, second)


@pairwise_dots.register_fake
def _(features, first, second):
    return features.new_empty(features.shape[0], first.shape[0])


@torch.library.custom_op("kevolve::pairwise_dots_backward", mutates_args=())
def pairwise_dots_backward(grad: torch.Tensor, features: torch.Tensor, first: torch.Tensor,
                           second: torch.Tensor) -> torch.Tensor:
    """The gradient [B, F, D] of pairwise_dots for its features, given the gradient [B, P] of its output."""
    return pairwise_dots_backward_meaning(grad, features, first, second)


@pairwise_dots_backward.register_fake
def _(grad, features, first, second):
    return torch.empty_like(features, memory_format=torch.contiguous_format)


def _save_inputs(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _pairwise_dots_grad(ctx, grad):
    features, first, second = ctx.saved_tensors
    return torch.ops.kevolve.pairwise_dots_backward(grad, features, first, second), None, None


pairwise_dots.register_autograd(_pairwise_dots_grad, setup_context=_save_inputs)

@torch.library.custom_op("kevolve::embedding_bags", mutates_args=())
def embedding_bags(weights: list[torch.Tensor], indices: list[torch.Tensor], offsets: list[torch.Tensor], mode: int,
                   include_last_offset: bool) -> list[torch.Tensor]:
    """Many embedding bags at once (sum or mean mode, one weight, indices and offsets per table): the
    pooled [bags_t, dim] rows of every table t."""
    return embedding_bags_meaning(weights, indices, offsets, mode, include_last_offset)


@embedding_bags.register_fake
def _(weights, indices, offsets, mode, include_last_offset):
    return [w.new_empty(o.shape[0] - int(include_last_offset), w.shape[1]) for w, o in zip(weights, offsets)]


def embedding_bags_backward_from_offsets(grads: list[torch.Tensor], indices: list[torch.Tensor],
                                         offsets: list[torch.Tensor], num_weights: list[int], mode: int,
                                         include_last_offset: bool) -> list[torch.Tensor]:
    """meanings.embedding_bags_backward_meaning's gradients (the last bag ends at the last index), with each bag's
    size the difference of its offsets rather than a count of its indices: an index_add that Inductor lowers to a
    sorted accumulate (two radix sorts and an indexing kernel per table) is gone. The plain-ATen form of an
    unclaimed kevolve::embedding_bags_backward, and so the torch.compile'd reference of its family."""
    out = []
    for grad, index, offset, rows in zip(grads, indices, offsets, num_weights):
        bags, total = grad.shape[0], index.numel()
        starts = offset[:bags]
        bag = torch.arange(bags, dtype=offset.dtype, device=offset.device)
        next_starts = offset.index_select(0, (bag + 1).clamp_max(offset.shape[0] - 1))  # no slice: no size guard
        bag_size = torch.where(bag == bags - 1, total, next_starts) - starts
        positions = torch.arange(total, dtype=offset.dtype, device=offset.device)
        bag_of_index = torch.searchsorted(starts, positions, right=True, out_int32=offset.dtype == torch.int32) - 1
        out.append(torch.ops.aten._embedding_bag_backward.default(
            grad, index, offset, bag_of_index, bag_size, torch.zeros_like(bag_size), rows, False, mode, False, None,
            -1))
    return out


@torch.library.custom_op("kevolve::embedding_bags_backward", mutates_args=())
def embedding_bags_backward(grads: list[torch.Tensor], indices: list[torch.Tensor], offsets: list[torch.Tensor],
                            num_weights: list[int], mode: int, include_last_offset: bool) -> list[torch.Tensor]:
    """The dense [num_weights_t, dim] weight gradient of every table of embedding_bags."""
    return embedding_bags_backward_from_offsets(grads, indices, offsets, num_weights, mode, include_last_offset)


@embedding_bags_backward.register_fake
def _(grads, indices, offsets, num_weights, mode, include_last_offset):
    return [g.new_empty(rows, g.shape[1]) for g, rows in zip(grads, num_weights)]


def _save_tables(ctx, inputs, output) -> None:
    weights, indices, offsets, mode, include_last_offset = inputs
    ctx.tables, ctx.mode, ctx.include_last_offset = len(weights), mode, include_last_offset
    ctx.num_weights, ctx.dim, ctx.dtype = [w.shape[0] for w in weights], weights[0].shape[1], weights[0].dtype
    ctx.save_for_backward(*indices, *offsets)


def _embedding_bags_grad(ctx, grads):
    saved = ctx.saved_tensors
    indices, offsets = list(saved[:ctx.tables]), list(saved[ctx.tables:])
    grads = [g if g is not None else torch.zeros(o.shape[0] - ctx.include_last_offset, ctx.dim, dtype=ctx.dtype,
                                                 device=o.device) for g, o in zip(grads, offsets)]
    weight_grads = torch.ops.kevolve.embedding_bags_backward(grads, indices, offsets, ctx.num_weights, ctx.mode,
                                                             ctx.include_last_offset)
    return weight_grads, [None] * ctx.tables, [None] * ctx.tables, None, None


embedding_bags.register_autograd(_embedding_bags_grad, setup_context=_save_tables)


@dataclass(frozen=True)
class InnerCall:
    """The call a layout pattern op is offered to the families as: `overload` on `arguments(*the op's own)`."""

    overload: torch._ops.OpOverload
    arguments: Callable[..., list]


def _stack_inner_arguments(heads, weights, indices, offsets, mode, include_last_offset) -> list:
    return [weights, indices, offsets, mode, include_last_offset]


def _stack_backward_inner_arguments(grad, heads, indices, offsets, num_weights, mode, include_last_offset) -> list:
    grads = [grad.select(1, heads + t) for t in range(len(indices))]
    return [grads, indices, offsets, num_weights, mode, include_last_offset]


def _check_heads(heads: list[torch.Tensor], weights: list[torch.Tensor]) -> None:
    """ValueError unless every head is a 2-D tensor in the tables' dtype (torch.stack would promote another)."""
    for head in heads:
        if head.dim() != 2 or head.dtype != weights[0].dtype:
            raise ValueError(f"embedding_bags_stack: a head must be [samples, dim] in the tables' {weights[0].dtype}, "
                             f"not {head.dim()}-D {head.dtype}")


def embedding_bags_stack_meaning(heads: list[torch.Tensor], weights: list[torch.Tensor], indices: list[torch.Tensor],
                                 offsets: list[torch.Tensor], mode: int, include_last_offset: bool) -> torch.Tensor:
    """torch.stack([*heads, *pooled], 1), the pooled rows those of kevolve::embedding_bags (the pattern op, which
    its family claims, is kept inside)."""
    pooled = torch.ops.kevolve.embedding_bags(*_stack_inner_arguments(heads, weights, indices, offsets, mode,
                                                                        include_last_offset))
    return torch.ops.aten.stack.default([*heads, *pooled], 1)


@torch.library.custom_op("kevolve::embedding_bags_stack", mutates_args=())
def embedding_bags_stack(heads: list[torch.Tensor], weights: list[torch.Tensor], indices: list[torch.Tensor],
                         offsets: list[torch.Tensor], mode: int, include_last_offset: bool) -> torch.Tensor:
    """Rows [samples, heads + tables, dim]: the head rows [samples, dim] (none or more, of the tables' dtype),
    then every table's pooled rows as embedding_bags pools them (one bag per sample in every table). The input
    of a DLRM interaction, which a kernel can fill in place of a copy."""
    _check_heads(heads, weights)
    return embedding_bags_stack_meaning(heads, weights, indices, offsets, mode, include_last_offset)


@embedding_bags_stack.register_fake
def _(heads, weights, indices, offsets, mode, include_last_offset):
    _check_heads(heads, weights)
    samples = offsets[0].shape[0] - int(include_last_offset)
    return weights[0].new_empty(samples, len(heads) + len(weights), weights[0].shape[1])


def embedding_bags_stack_backward_meaning(grad: torch.Tensor, heads: int, indices: list[torch.Tensor],
                                          offsets: list[torch.Tensor], num_weights: list[int], mode: int,
                                          include_last_offset: bool) -> list[torch.Tensor]:
    """kevolve::embedding_bags_backward of the tables' slices grad[:, heads + t] (the pattern op kept inside)."""
    return torch.ops.kevolve.embedding_bags_backward(*_stack_backward_inner_arguments(
        grad, heads, indices, offsets, num_weights, mode, include_last_offset))


@torch.library.custom_op("kevolve::embedding_bags_stack_backward", mutates_args=())
def embedding_bags_stack_backward(grad: torch.Tensor, heads: int, indices: list[torch.Tensor],
                                  offsets: list[torch.Tensor], num_weights: list[int], mode: int,
                                  include_last_offset: bool) -> list[torch.Tensor]:
    """The dense weight gradient of every table of embedding_bags_stack, given the gradient [samples,
    heads + tables, dim] of its output (read in place by a kernel that can)."""
    return embedding_bags_stack_backward_meaning(grad, heads, indices, offsets, num_weights, mode,
                                                 include_last_offset)


@embedding_bags_stack_backward.register_fake
def _(grad, heads, indices, offsets, num_weights, mode, include_last_offset):
    return [grad.new_empty(rows, grad.shape[2]) for rows in num_weights]


def _save_stack(ctx, inputs, output) -> None:
    heads, weights, indices, offsets, mode, include_last_offset = inputs
    ctx.heads, ctx.tables, ctx.mode, ctx.include_last_offset = len(heads), len(weights), mode, include_last_offset
    ctx.num_weights = [w.shape[0] for w in weights]
    ctx.save_for_backward(*indices, *offsets)


def _embedding_bags_stack_grad(ctx, grad):
    saved = ctx.saved_tensors
    indices, offsets = list(saved[:ctx.tables]), list(saved[ctx.tables:])
    weight_grads = torch.ops.kevolve.embedding_bags_stack_backward(grad, ctx.heads, indices, offsets,
                                                                   ctx.num_weights, ctx.mode, ctx.include_last_offset)
    head_grads = [grad.select(1, h) for h in range(ctx.heads)]
    return head_grads, weight_grads, [None] * ctx.tables, [None] * ctx.tables, None, None


embedding_bags_stack.register_autograd(_embedding_bags_stack_grad, setup_context=_save_stack)


@torch.library.custom_op("kevolve::fm_interaction", mutates_args=())
def fm_interaction(features: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """WuKong's factorization-machine interaction X (Xᵀ Y): features [B, N, D], projection [N, K] or
    [B, N, K] -> [B, N, K]."""
    return fm_interaction_meaning(features, projection)


@fm_interaction.register_fake
def _(features, projection):
    return features.new_empty(features.shape[0], features.shape[1], projection.shape[-1])


@torch.library.custom_op("kevolve::fm_interaction_backward", mutates_args=())
def fm_interaction_backward(grad: torch.Tensor, features: torch.Tensor,
                            projection: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradients (for features, for projection) of fm_interaction, given the gradient [B, N, K] of its output."""
    return fm_interaction_backward_meaning(grad, features, projection)


@fm_interaction_backward.register_fake
def _(grad, features, projection):
    return (torch.empty_like(features, memory_format=torch.contiguous_format),
            torch.empty_like(projection, memory_format=torch.contiguous_format))


def _fm_interaction_grad(ctx, grad):
    return torch.ops.kevolve.fm_interaction_backward(grad, *ctx.saved_tensors)


fm_interaction.register_autograd(_fm_interaction_grad, setup_context=_save_inputs)


def addmm_relu_meaning(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """relu(bias + a @ b) as addmm and relu. (Kept out of meanings.py, whose text is part of other families'
    kernel sources: editing it would invalidate their cached records.)"""
    return torch.ops.aten.relu.default(torch.ops.aten.addmm.default(bias, a, b))


@torch.library.custom_op("kevolve::addmm_relu", mutates_args=())
def addmm_relu(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """relu(bias + a @ b) for a [M, K], b [K, N] and bias [N], [1, N] or [M, N]: a post-grad epilogue pattern
    (torch_kevolve.patterns.epilogues), found in Inductor's ATen graphs after autograd, so it has no autograd."""
    return addmm_relu_meaning(bias, a, b)


@addmm_relu.register_fake
def _(bias, a, b):
    return a.new_empty(a.shape[0], b.shape[1])


def bucketize_clamp_offset_meaning(values: torch.Tensor, boundaries: torch.Tensor, lengths: torch.Tensor,
                                   offsets: torch.Tensor, right: bool) -> torch.Tensor:
    """min(searchsorted(boundaries, values, right), lengths) + offsets as MBDT writes it (the values copied
    contiguous first; kept out of meanings.py like addmm_relu_meaning)."""
    buckets = torch.ops.aten.searchsorted.Tensor(boundaries, values.contiguous(), right=right)
    return torch.ops.aten.add.Tensor(torch.ops.aten.minimum.default(buckets, lengths), offsets)


@torch.library.custom_op("kevolve::bucketize_clamp_offset", mutates_args=())
def bucketize_clamp_offset(values: torch.Tensor, boundaries: torch.Tensor, lengths: torch.Tensor,
                           offsets: torch.Tensor, right: bool) -> torch.Tensor:
    """Bucket ids of rows of values, each row bucketized by its own sorted boundaries, clamped and offset per
    row: values [rows, per_row] (any strides), boundaries [rows, length], lengths and offsets [rows, 1] ->
    [rows, per_row] contiguous, min(searchsorted(boundaries, values, right), lengths) + offsets, exactly
    ATen's (a NaN value counts every boundary). A post-grad epilogue pattern (torch_kevolve.patterns.epilogues),
    so it has no autograd."""
    return bucketize_clamp_offset_meaning(values, boundaries, lengths, offsets, right)


@bucketize_clamp_offset.register_fake
def _(values, boundaries, lengths, offsets, right):
    dtype = torch.promote_types(torch.promote_types(torch.int64, lengths.dtype), offsets.dtype)
    return values.new_empty(values.shape, dtype=dtype)


def map_id_meaning(ids: torch.Tensor, vocabulary: torch.Tensor, rows: torch.Tensor, default_row: int) -> torch.Tensor:
    """rows[k] where ids equals vocabulary[k], default_row elsewhere, as MapId writes it: bucketize, clamp, gather,
    compare, where (kept out of meanings.py like addmm_relu_meaning)."""
    position = torch.ops.aten.clamp_max.default(torch.ops.aten.bucketize.Tensor(ids, vocabulary),
                                                vocabulary.numel() - 1)
    found = torch.ops.aten.eq.Tensor(torch.ops.aten.gather.default(vocabulary, 0, position), ids)
    default = torch.ops.aten.full.default([], default_row, dtype=rows.dtype, device=rows.device)
    return torch.ops.aten.where.self(found, torch.ops.aten.gather.default(rows, 0, position), default)


@torch.library.custom_op("kevolve::map_id", mutates_args=())
def map_id(ids: torch.Tensor, vocabulary: torch.Tensor, rows: torch.Tensor, default_row: int) -> torch.Tensor:
    """Raw ids to rows through a sorted vocabulary: ids [n] and vocabulary [length] (sorted, length >= 1) of one
    integer dtype, rows [length] -> [n] in rows' dtype, rows[k] where an id equals vocabulary[k] (its first such
    k), default_row where it equals none. A post-grad epilogue pattern (torch_kevolve.patterns.epilogues), so it
    has no autograd."""
    return map_id_meaning(ids, vocabulary, rows, default_row)


@map_id.register_fake
def _(ids, vocabulary, rows, default_row):
    return ids.new_empty(ids.shape, dtype=rows.dtype)


def keep_last_meaning(values: torch.Tensor, ends: torch.Tensor, kept: torch.Tensor, offsets: torch.Tensor,
                      total: int) -> torch.Tensor:
    """values[ends[u] - kept[u] + p - offsets[u]] for each position p < total, u its segment
    bucketize(p, offsets[1:], right=True), as batch event truncation writes it (kept out of meanings.py like
    addmm_relu_meaning). The segment is found in the whole of offsets, max(bucketize(p, offsets, right=True) - 1, 0),
    the same on sorted offsets: torch 2.11's Inductor searches a sliced tensor from its base's start (it drops the
    view's offset), which reads the wrong segments and trips its index assert on CUDA."""
    position = torch.ops.aten.arange.start_step(0, total, 1, dtype=torch.int64, device=values.device)
    segment = (torch.ops.aten.bucketize.Tensor(position, offsets, right=True) - 1).clamp_min(0)
    source = ends[segment] - kept[segment] + position - offsets[segment]
    return values[source]


@torch.library.custom_op("kevolve::keep_last", mutates_args=())
def keep_last(values: torch.Tensor, ends: torch.Tensor, kept: torch.Tensor, offsets: torch.Tensor,
              total: int) -> torch.Tensor:
    """The last kept[u] values of each segment u of a jagged batch, packed: segment u of values [n, ...] ends
    before ends[u] (1-D, one per segment), its kept values go to positions offsets[u] to offsets[u + 1]
    (offsets [segments + 1], sorted, the last at least total) of the [total, ...] output, the positions
    before offsets[0] to the first segment. A post-grad epilogue pattern (torch_kevolve.patterns.epilogues),
    so it has no autograd."""
    return keep_last_meaning(values, ends, kept, offsets, total)


@keep_last.register_fake
def _(values, ends, kept, offsets, total):
    return values.new_empty((total, *values.shape[1:]))


def embedding_meaning(weight: torch.Tensor, indices: torch.Tensor, padding_idx: int) -> torch.Tensor:
    """aten.embedding of weight's rows at indices (kept out of meanings.py like addmm_relu_meaning)."""
    return torch.ops.aten.embedding.default(weight, indices, padding_idx)


def embedding_backward_meaning(grad: torch.Tensor, indices: torch.Tensor, num_weights: int, padding_idx: int,
                               scale_grad_by_freq: bool) -> torch.Tensor:
    """aten.embedding_dense_backward (kept out of meanings.py like addmm_relu_meaning). Put back after autograd,
    it is traced with Inductor's decompositions (rewrite.replace_node), so Inductor compiles what it would have."""
    return torch.ops.aten.embedding_dense_backward.default(grad, indices, num_weights, padding_idx, scale_grad_by_freq)


@torch.library.custom_op("kevolve::embedding", mutates_args=())
def embedding(weight: torch.Tensor, indices: torch.Tensor, padding_idx: int) -> torch.Tensor:
    """Rows of a 2-D weight at integer indices of any shape -> [*indices.shape, weight.shape[1]]; padding_idx
    (-1: none) gets no gradient. It exists for its backward: AOTAutograd decomposes aten.embedding's dense
    backward before any post-grad pass could see it, but not this op's (kevolve::embedding_backward)."""
    return embedding_meaning(weight, indices, padding_idx)


@embedding.register_fake
def _(weight, indices, padding_idx):
    return weight.new_empty((*indices.shape, weight.shape[1]))


@torch.library.custom_op("kevolve::embedding_backward", mutates_args=())
def embedding_backward(grad: torch.Tensor, indices: torch.Tensor, num_weights: int, padding_idx: int,
                       scale_grad_by_freq: bool) -> torch.Tensor:
    """The dense [num_weights, dim] weight gradient of kevolve::embedding: aten.embedding_dense_backward, which
    it stands for (STANDS_FOR), with the same arguments."""
    return embedding_backward_meaning(grad, indices, num_weights, padding_idx, scale_grad_by_freq)


@embedding_backward.register_fake
def _(grad, indices, num_weights, padding_idx, scale_grad_by_freq):
    return grad.new_empty(num_weights, grad.shape[-1])


def _save_embedding(ctx, inputs, output) -> None:
    weight, indices, padding_idx = inputs
    ctx.num_weights, ctx.padding_idx = weight.shape[0], padding_idx
    ctx.save_for_backward(indices)


def _embedding_grad(ctx, grad):
    (indices,) = ctx.saved_tensors
    return torch.ops.kevolve.embedding_backward(grad, indices, ctx.num_weights, ctx.padding_idx, False), None, None


embedding.register_autograd(_embedding_grad, setup_context=_save_embedding)


MEANINGS: dict[torch._ops.OpOverload, Callable] = {
    torch.ops.kevolve.addmm_relu.default: addmm_relu_meaning,
    torch.ops.kevolve.bucketize_clamp_offset.default: bucketize_clamp_offset_meaning,
    torch.ops.kevolve.embedding.default: embedding_meaning,
    torch.ops.kevolve.embedding_backward.default: embedding_backward_meaning,
    torch.ops.kevolve.embedding_bags.default: embedding_bags_meaning,
    torch.ops.kevolve.embedding_bags_backward.default: embedding_bags_backward_from_offsets,
    torch.ops.kevolve.embedding_bags_stack.default: embedding_bags_stack_meaning,
    torch.ops.kevolve.embedding_bags_stack_backward.default: embedding_bags_stack_backward_meaning,
    torch.ops.kevolve.fm_interaction.default: fm_interaction_meaning,
    torch.ops.kevolve.fm_interaction_backward.default: fm_interaction_backward_meaning,
    torch.ops.kevolve.keep_last.default: keep_last_meaning,
    torch.ops.kevolve.map_id.default: map_id_meaning,
    torch.ops.kevolve.pairwise_dots.default: pairwise_dots_meaning,
    torch.ops.kevolve.pairwise_dots_backward.default: pairwise_dots_backward_meaning,
}


# Pattern ops that stand for one ATen overload of the same arguments: offered to the families as that overload.
STANDS_FOR: dict[torch._ops.OpOverload, torch._ops.OpOverload] = {
    torch.ops.kevolve.embedding_backward.default: torch.ops.aten.embedding_dense_backward.default,
}


# Pattern ops whose value is a layout of another pattern op's outputs (or whose input is one of its inputs laid
# out so): offered to that op's family as their inner call, where a form of its cached winner may write (read)
# the layout directly (families.LAYOUT_FORMS); where none does, the op goes back to its meaning, which keeps the
# inner op.
INNER_CALLS: dict[torch._ops.OpOverload, InnerCall] = {
    torch.ops.kevolve.embedding_bags_stack.default: InnerCall(torch.ops.kevolve.embedding_bags.default,
                                                              _stack_inner_arguments),
    torch.ops.kevolve.embedding_bags_stack_backward.default: InnerCall(
        torch.ops.kevolve.embedding_bags_backward.default, _stack_backward_inner_arguments),
}


def is_pattern_op(target) -> bool:
    """Whether `target` is one of the pattern ops."""
    return target in MEANINGS


def meaning(overload: torch._ops.OpOverload) -> Callable:
    """The plain-ATen function computing pattern op `overload` (same arguments, same result)."""
    return MEANINGS[overload]
