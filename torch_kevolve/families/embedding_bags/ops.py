"""The batched embedding-bag kernels as functional custom ops, for CPU graphs (the Triton interpreter, opaque
to Inductor); outputs are copies (custom-op outputs may not alias each other):

    kevolve::batched_embedding_bags_forward  -> every table's pooled rows, one launch (forward_triton.py)
    kevolve::stacked_embedding_bags_backward -> every table's dense weight gradient (embedding_bag.multi_table),
                                                by the algorithm named (a key of STACKED_BACKWARDS)

The genome travels as JSON text (embedding_bag.ops.genome_json).
"""
from __future__ import annotations

import json

import torch
from torch import Tensor

from ..embedding_bag.multi_table import embedding_bags_backward, embedding_bags_backward_rows
from .forward_triton import embedding_bags_forward

STACKED_BACKWARDS = {"segment": embedding_bags_backward, "rows": embedding_bags_backward_rows}


@torch.library.custom_op("kevolve::batched_embedding_bags_forward", mutates_args=())
def batched_embedding_bags_forward(weights: list[Tensor], indices: list[Tensor], offsets: list[Tensor], mode: int,
                                   include_last_offset: bool, genome: str) -> list[Tensor]:
    pooled = embedding_bags_forward(weights, indices, offsets, mode, include_last_offset, json.loads(genome))
    return [p.clone() for p in pooled]


@batched_embedding_bags_forward.register_fake
def _(weights, indices, offsets, mode, include_last_offset, genome):
    return [w.new_empty(o.shape[0] - int(include_last_offset), w.shape[1]) for w, o in zip(weights, offsets)]


@torch.library.custom_op("kevolve::stacked_embedding_bags_backward", mutates_args=())
def stacked_embedding_bags_backward(grads: list[Tensor], indices: list[Tensor], offsets: list[Tensor],
                                    num_weights: list[int], mode: int, algorithm: str, genome: str) -> list[Tensor]:
    stacked = STACKED_BACKWARDS[algorithm](grads, indices, offsets, num_weights, mode, json.loads(genome))
    return [g.clone() for g in stacked]


@stacked_embedding_bags_backward.register_fake
def _(grads, indices, offsets, num_weights, mode, algorithm, genome):
    return [g.new_empty(rows, g.shape[1]) for g, rows in zip(grads, num_weights)]
