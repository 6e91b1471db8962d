"""The Triton kernels as functional custom ops, callable from Inductor's generated wrapper.

    kevolve::embedding_bag_forward  -> (output, offset2bag, bag_size, max_indices), ATen's layout
    kevolve::embedding_bag_backward -> dense weight gradient [num_weights, dim]

The genome travels as a JSON string (parsed once per distinct string).
"""
import functools
import json
from typing import Optional

import torch
from torch import Tensor

from .backward_triton import embedding_bag_backward
from .forward_triton import embedding_bag_forward
from .layout import forward_outputs


def genome_json(genome: dict) -> str:
    """The canonical JSON text of a genome, as the ops take it."""
    return json.dumps(genome, sort_keys=True)


@functools.lru_cache(maxsize=None)
def _parsed(genome: str) -> tuple:
    return tuple(json.loads(genome).items())


@torch.library.custom_op("kevolve::embedding_bag_forward", mutates_args=())
def embedding_bag_forward_op(
    weight: Tensor,
    indices: Tensor,
    offsets: Tensor,
    per_sample_weights: Optional[Tensor],
    mode: int,
    include_last_offset: bool,
    padding_idx: int,
    genome: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return embedding_bag_forward(
        weight, indices, offsets, per_sample_weights, mode, include_last_offset, padding_idx, dict(_parsed(genome))
    )


@embedding_bag_forward_op.register_fake
def _(weight, indices, offsets, per_sample_weights, mode, include_last_offset, padding_idx, genome):
    return forward_outputs(weight, indices, offsets, mode, include_last_offset, padding_idx)


@torch.library.custom_op("kevolve::embedding_bag_backward", mutates_args=())
def embedding_bag_backward_op(
    grad: Tensor,
    indices: Tensor,
    offsets: Optional[Tensor],
    offset2bag: Tensor,
    max_indices: Tensor,
    per_sample_weights: Optional[Tensor],
    num_weights: int,
    mode: int,
    padding_idx: int,
    genome: str,
) -> Tensor:
    return embedding_bag_backward(
        grad,
        indices,
        offsets,
        offset2bag,
        max_indices,
        per_sample_weights,
        num_weights,
        mode,
        padding_idx,
        dict(_parsed(genome)),
    )


@embedding_bag_backward_op.register_fake
def _(grad, indices, offsets, offset2bag, max_indices, per_sample_weights, num_weights, mode, padding_idx, genome):
    return grad.new_empty(num_weights, grad.shape[1])
