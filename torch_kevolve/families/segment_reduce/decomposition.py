"""Segment reductions and their gradients in other PyTorch ops, which Inductor compiles for any device:
each data row finds its segment by searchsorted over the offsets (rows no segment holds go to a spare
segment that is dropped), then index_add (or a one-hot matmul, sums and means) / scatter_reduce
accumulate, and gathers spread gradients."""
from __future__ import annotations

import torch

from .calls import SegmentCall, offsets_of

ACCUMULATES = ("index_add", "one_hot")
IDENTITY = {"sum": 0.0, "mean": 0.0, "max": -float("inf"), "min": float("inf")}


def _segment_of_rows(offsets: torch.Tensor, call: SegmentCall) -> torch.Tensor:
    """Segment of every data row [rows]; `call.segments` for rows outside every segment."""
    rows = torch.arange(call.rows, device=offsets.device)
    segment = torch.searchsorted(offsets.long(), rows, right=True) - 1
    return torch.where((segment >= 0) & (segment < call.segments), segment, call.segments)


def reduce(t: dict, call: SegmentCall, accumulate: str) -> list[torch.Tensor]:
    offsets = offsets_of(t["index"], call).long()
    lengths = (offsets[1:] - offsets[:-1]).to(torch.float32)[:, None]
    segment = _segment_of_rows(offsets, call)
    data = t["data"].reshape(call.rows, call.inner).float()
    if call.backward:
        grad = torch.cat([t["grad"].reshape(call.segments, call.inner).float(), data.new_zeros(1, call.inner)])
        if call.reduce == "mean":
            grad[:-1] /= lengths.clamp(min=1)
        spread = grad[segment]
        if call.reduce in ("max", "min"):
            output = torch.cat([t["output"].reshape(call.segments, call.inner).float(), data.new_zeros(1, call.inner)])
            hit = (data == output[segment]) | data.isnan()
            count = data.new_zeros(call.segments + 1, call.inner).index_add(0, segment, hit.float())[segment]
            spread = torch.where(hit, torch.where((count >= 2) & (spread > 0), spread / count, spread), 0.0)
        return [spread.to(t["data"].dtype).reshape(call.out_shape)]
    start = call.initial if call.initial is not None else IDENTITY[call.reduce]
    out = data.new_full((call.segments + 1, call.inner), start)
    if call.reduce in ("sum", "mean"):
        if accumulate == "one_hot":
            out = out + torch.nn.functional.one_hot(segment, call.segments + 1).t().float() @ data
        else:
            out = out.index_add(0, segment, data)
        out = out[:-1]
        if call.reduce == "mean":
            empty = out if call.initial is not None else torch.full_like(out, float("nan"))
            out = torch.where(lengths > 0, out / lengths.clamp(min=1), empty)
    else:
        expanded = segment[:, None].expand(call.rows, call.inner)
        out = out.scatter_reduce(0, expanded, data, "amax" if call.reduce == "max" else "amin")[:-1]
    return [out.to(t["data"].dtype).reshape(call.out_shape)]
