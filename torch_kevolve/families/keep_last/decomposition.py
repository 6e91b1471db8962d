"""Batch event truncation's gather in other PyTorch ops, which Inductor compiles for any device: each position's
segment found by a scan instead of a search. A one is added at each segment start offsets[1:] (at 0 for a start
below it; none for a start from total on), and the running sum at a position counts the starts at or before it,
which is bucketize(position, offsets[1:], right=True) on sorted offsets; the pattern's gather follows."""
from __future__ import annotations

import torch

from .calls import KeepLastCall


def scanned_gather(t: dict, call: KeepLastCall) -> list[torch.Tensor]:
    """The call's packed kept values (its output)."""
    values, ends, kept, offsets = (t[n] for n in ("values", "ends", "kept", "offsets"))
    starts = offsets[1:].long()
    marks = torch.zeros(call.total + 1, dtype=torch.int64, device=values.device).index_add(
        0, starts.clamp(0, call.total), torch.ones_like(starts))[:call.total]  # marks at total or past it: dropped
    segment = marks.cumsum(0).clamp(max=call.segments - 1)  # past offsets[segments] the pattern fails: unasked
    position = torch.arange(call.total, device=values.device)
    return [values[ends[segment] - kept[segment] + position - offsets[segment]]]
