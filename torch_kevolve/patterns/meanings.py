"""The plain-ATen meaning of each pattern op: its eager implementation, and what KevolvePass and the
decompositions put back where no kernel claims it."""
from __future__ import annotations

import torch

aten = torch.ops.aten


def pairwise_dots_meaning(features: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """out[b, p] = <features[b, first[p]], features[b, second[p]]>, as DLRM writes it (bmm, then gather)."""
    return torch.bmm(features, features.transpose(1, 2))[:, first, second]


def pairwise_dots_backward_meaning(grad: torch.Tensor, features: torch.Tensor, first: torch.Tensor,
                                   second: torch.Tensor) -> torch.Tensor:
    """The gradient of pairwise_dots for features, as autograd derives it from the bmm and the gather:
    the pairs' gradients accumulated into a [B, F, F] square, then two bmms."""
    batch, rows, _ = features.shape
    square = aten.index_put.default(grad.new_zeros(batch, rows, rows), [None, first, second], grad, True)
    square = square.to(features.dtype)
    return torch.bmm(square, features) + torch.bmm(square.transpose(1, 2), features)


def embedding_bags_meaning(weights: list[torch.Tensor], indices: list[torch.Tensor], offsets: list[torch.Tensor],
                           mode: int, include_last_offset: bool) -> list[torch.Tensor]:
    """Each table's pooled rows, as nn.EmbeddingBag computes them (mode 0 sum, 1 mean; no padding index)."""
    return [aten._embedding_bag.default(w, i, o, False, mode, False, None, include_last_offset, -1)[0]
            for w, i, o in zip(weights, indices, offsets)]


def embedding_bags_backward_meaning(grads: list[torch.Tensor], indices: list[torch.Tensor],
                                    offsets: list[torch.Tensor], num_weights: list[int], mode: int,
                                    include_last_offset: bool) -> list[torch.Tensor]:
    """Each table's dense weight gradient, as autograd derives it from aten._embedding_bag, with the bag of
    every index and the bag sizes recomputed from the offsets (the last bag ends at the last index)."""
    out = []
    for grad, index, offset, rows in zip(grads, indices, offsets, num_weights):
        bags = grad.shape[0]
        positions = torch.arange(index.numel(), dtype=offset.dtype, device=offset.device)
        bag_of_index = torch.searchsorted(offset[:bags], positions, right=True, out_int32=offset.dtype == torch.int32) - 1
        bag_size = torch.zeros(bags, dtype=offset.dtype, device=offset.device).index_add(
            0, bag_of_index, torch.ones_like(bag_of_index))
        out.append(aten._embedding_bag_backward.default(grad, index, offset, bag_of_index, bag_size,
                                                        torch.zeros_like(bag_size), rows, False, mode, False, None, -1))
    return out


def fm_interaction_meaning(features: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """out = X (Xᵀ Y): features X [B, N, D], projection Y [N, K] (shared) or [B, N, K] -> [B, N, K], as
    WuKong's factorization-machine block writes it (the [B, D, K] product first)."""
    return torch.matmul(features, torch.matmul(features.transpose(1, 2), projection))


def fm_interaction_backward_meaning(grad: torch.Tensor, features: torch.Tensor,
                                    projection: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradients of fm_interaction for X and Y given G = d out, as autograd derives them from the two
    matmuls: dX = G (XᵀY)ᵀ + Y (XᵀG)ᵀ and dY = X (XᵀG), summed over the batch when Y is shared."""
    transposed = features.transpose(1, 2)
    spread = torch.matmul(transposed, grad)
    grad_features = (torch.matmul(grad, torch.matmul(transposed, projection).transpose(1, 2))
                     + torch.matmul(projection, spread.transpose(1, 2)))
    grad_projection = torch.matmul(features, spread)
    return grad_features, grad_projection.sum(0) if projection.dim() == 2 else grad_projection
