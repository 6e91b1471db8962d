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
