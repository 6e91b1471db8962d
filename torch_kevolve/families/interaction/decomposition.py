"""The interaction in other PyTorch ops, which Inductor compiles for any device.

pattern: the ops' plain-ATen meaning (bmm then gather; its autograd gradient: a [B, F, F] square, two bmms).
rows:    the pairs' rows gathered and multiplied (Inductor fuses gather, product and sum; no square); the
         backward adds grad[p] * the other row into each row of a pair with index_add.
"""
from __future__ import annotations

import torch

from ...patterns import meanings
from .calls import InteractionCall

METHODS = ("pattern", "rows")


def _wrapped(index: torch.Tensor, rows: int) -> torch.Tensor:
    return torch.where(index < 0, index + rows, index)


def interaction(t: dict, call: InteractionCall, method: str) -> list[torch.Tensor]:
    x, first, second = t["features"], t["first"], t["second"]
    if method == "pattern":
        if call.backward:
            return [meanings.pairwise_dots_backward_meaning(t["grad"], x, first, second)]
        return [meanings.pairwise_dots_meaning(x, first, second)]
    wide = torch.float64 if call.dtype == torch.float64 else torch.float32
    first, second = _wrapped(first, call.rows), _wrapped(second, call.rows)
    x = x.to(wide)
    if not call.backward:
        return [(x[:, first] * x[:, second]).sum(-1).to(call.dtype)]
    g = t["grad"].to(wide)[:, :, None]
    out = x.new_zeros(x.shape).index_add(1, first, g * x[:, second]).index_add(1, second, g * x[:, first])
    return [out.to(call.dtype)]
