"""Gathers and the embedding gradient in other PyTorch ops (advanced indexing, index_add / one-hot
matmul), which Inductor compiles for any device."""
from __future__ import annotations

import torch

from .calls import GatherCall

ACCUMULATES = ("index_add", "one_hot")


def gather(t: dict, call: GatherCall, accumulate: str) -> list[torch.Tensor]:
    values, index = t["values"], t["index"].reshape(-1).long()
    if not call.backward:
        rows = values.reshape(call.outer, call.length, call.inner)[:, index]
        return [rows.reshape(call.out_shape)]
    wide = torch.float64 if values.dtype == torch.float64 else torch.float32
    grad = values.reshape(call.count, call.inner).to(wide) * (index != call.padding_idx)[:, None]
    if accumulate == "index_add":
        table = grad.new_zeros(call.out_shape).index_add(0, index, grad)
    else:
        table = torch.nn.functional.one_hot(index, call.length).to(wide).t() @ grad
    return [table.to(values.dtype)]
