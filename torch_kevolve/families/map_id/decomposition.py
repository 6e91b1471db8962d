"""MapId's lookup in other PyTorch ops, which Inductor compiles for any device: the radix search of the Triton
kernel (triton_kernel.py) as vectorised steps. Keys and ids go into 2^bits buckets of equal width over
[first key, last key] by integer arithmetic on key >> SHIFT (so no int64 range overflows; a bucket function only
has to be monotone and the same for keys and ids), ids outside the range into the end buckets; each bucket's
first position is a cumsum of its keys' counts, and an id halves only its bucket's positions (bucketize's
halving, bucketize/decomposition.halve)."""
from __future__ import annotations

import torch

from ..bucketize.decomposition import halve
from .calls import MapIdCall

SHIFT = 2  # (key >> 2) - (first >> 2) lies within int64 whatever the keys


def _buckets(keys: torch.Tensor, first: torch.Tensor, width: torch.Tensor, bits: int) -> torch.Tensor:
    return (((keys >> SHIFT) - (first >> SHIFT)) // width).clamp(0, (1 << bits) - 1)


def radix_lookup(t: dict, call: MapIdCall, bits: int) -> list[torch.Tensor]:
    """rows[position] where vocabulary[position] equals the id, default_row elsewhere (the call's output)."""
    ids, vocabulary, rows = t["ids"].long(), t["vocabulary"].long(), t["rows"]
    first, last = vocabulary[:1], vocabulary[-1:]
    width = ((last >> SHIFT) - (first >> SHIFT)) // (1 << bits) + 1
    counts = torch.zeros((1 << bits) + 1, dtype=torch.int64, device=ids.device)
    starts = counts.index_add(0, _buckets(vocabulary, first, width, bits) + 1, torch.ones_like(vocabulary)).cumsum(0)
    bucket = _buckets(ids, first, width, bits)
    position = halve(vocabulary[None], ids[None], starts[bucket][None], starts[bucket + 1][None],
                     call.length.bit_length(), right=False)[0].clamp(max=call.length - 1)
    return [torch.where(vocabulary[position] == ids, rows[position], call.default_row)]
