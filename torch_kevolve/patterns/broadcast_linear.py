"""A target attention's first linear layer, computed without building its input. DIN-style attention scores each
history item h against the user's target t by linear(cat([h, t, h - t, h * t], -1)): an input k times the
history's size (k parts), written, then read by a product k*D deep at every position, and the same again for its
gradient. With t one row per user broadcast along the L positions, each part is a*h + b*t + c*(h*t), so the layer
is h @ (P + R * t)ᵀ + t @ Qᵀ + bias, where P, Q and R combine the weight's D-wide column blocks by the parts'
coefficients: one D-deep product per position, by one [out, D] matrix per user, and nothing of size k*L*D. Where a
user's [out, D] matrix would outweigh its [L, D] history (short sequences), the product part is h*t @ Rᵀ instead:
two D-deep products per position, and one [B, L, D] tensor.
"""
from __future__ import annotations

import functools
import operator
from typing import Sequence

import torch
import torch.nn.functional as F

Part = tuple[int, int, int]  # a part's coefficients of h, t and h * t


def _combined(blocks: Sequence[torch.Tensor], coefficients: Sequence[int]) -> torch.Tensor | None:
    """Σ coefficient * block over the nonzero coefficients; None where all are zero."""
    terms = [block if c == 1 else c * block for c, block in zip(coefficients, blocks) if c]
    return functools.reduce(operator.add, terms) if terms else None


def broadcast_target_linear(history: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                            bias: torch.Tensor | None, parts: Sequence[Part]) -> torch.Tensor:
    """linear(cat([a*h + b*t + c*(h*t) for (a, b, c) in parts], -1), weight, bias) for history h [B, L, D] and
    target t [B, 1, D] broadcast along L; weight [out, len(parts) * D] -> [B, L, out]."""
    blocks = weight.split(history.shape[-1], dim=1)
    per_history, per_target, per_product = (_combined(blocks, [part[i] for part in parts]) for i in range(3))
    per_user = bias if per_target is None else F.linear(target, per_target, bias)  # [B, 1, out], or [out]
    if per_product is not None and history.shape[1] >= weight.shape[0]:
        per_user_matrix = per_product * target if per_history is None else per_history + per_product * target
        per_position = torch.matmul(history, per_user_matrix.transpose(1, 2))
    elif per_product is not None:
        per_position = F.linear(history * target, per_product)
        per_position = per_position if per_history is None else per_position + F.linear(history, per_history)
    elif per_history is not None:
        per_position = F.linear(history, per_history)
    else:
        return per_user.expand(*history.shape[:-1], weight.shape[0])
    return per_position if per_user is None else per_position + per_user
