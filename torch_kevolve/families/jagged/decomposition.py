"""Jagged <-> padded-dense conversions in indexing ops of PyTorch, which Inductor compiles for any device.

gather:  every output row reads its source row (padded positions index the packed rows; packed rows
         find their segment by searchsorted over the offsets), masked where none exists.
scatter: every input row is written to its destination; rows without one go to a spare row that is
         sliced off, and the output starts as padding (to_padded) or zeros (to_jagged).
"""
from __future__ import annotations

import torch

from .calls import JaggedCall

INDEXINGS = ("gather", "scatter")


def _padded_positions(offsets: torch.Tensor, call: JaggedCall) -> tuple[torch.Tensor, torch.Tensor]:
    """(packed row, whether it exists) of every padded position [batch, max_length]."""
    starts, ends = offsets[:-1], offsets[1:]
    positions = torch.arange(call.max_length, device=offsets.device)
    return starts[:, None] + positions, positions < (ends - starts)[:, None]


def _packed_positions(offsets: torch.Tensor, call: JaggedCall) -> tuple[torch.Tensor, torch.Tensor]:
    """(flat padded position, whether it exists) of every packed row [total]: its segment holds it
    within max_length."""
    starts, ends = offsets[:-1], offsets[1:]
    rows = torch.arange(call.total, device=offsets.device)
    segment = (torch.searchsorted(starts, rows, right=True) - 1).clamp(0, call.batch - 1)
    position = rows - starts[segment]
    held = (position >= 0) & (rows < ends[segment]) & (position < call.max_length)
    return segment * call.max_length + position, held


def convert(t: dict, call: JaggedCall, indexing: str) -> list[torch.Tensor]:
    source, offsets = t["source"], t["offsets"].long()
    padded_rows = call.batch * call.max_length
    if call.to_padded:
        values = source.reshape(call.total, call.inner)
        if indexing == "scatter" and call.batch:
            target, held = _packed_positions(offsets, call)
            out = values.new_full((padded_rows + 1, call.inner), call.padding_value)
            out[torch.where(held, target, padded_rows)] = values
            return [out[:padded_rows].reshape(call.out_shape)]
        rows, present = _padded_positions(offsets, call)
        picked = values[rows.clamp(0, call.total - 1)] if call.total else values.new_zeros(1, call.inner)
        return [torch.where(present[..., None], picked, call.padding_value).reshape(call.out_shape)]
    if call.batch == 0 or call.max_length == 0:
        return [source.new_zeros(call.out_shape)]
    dense = source.reshape(padded_rows, call.inner)
    if indexing == "scatter":
        rows, present = _padded_positions(offsets, call)
        out = dense.new_zeros(call.total + 1, call.inner)
        out[torch.where(present, rows, call.total).reshape(-1)] = dense
        return [out[:call.total].reshape(call.out_shape)]
    target, held = _packed_positions(offsets, call)
    picked = dense[target.clamp(0, padded_rows - 1)]
    return [torch.where(held[:, None], picked, 0).reshape(call.out_shape)]
