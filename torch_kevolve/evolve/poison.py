"""Poisoned allocations: memory a candidate allocates starts as POISON_BYTE, so elements it never writes fail.

CPU: glibc's malloc fills every allocation when the worker starts with MALLOC_PERTURB_ (WORKER_ENV);
the CPU allocator of PyTorch allocates through it. CUDA: right before a run, the caching allocator's
blocks for the expected outputs are freed back to the driver, then re-allocated filled and released to
the cache, where the candidate's allocations of those sizes find them.
0x7F bytes read as huge finite floats (NaN in fp16) and huge positive integers: no plausible result.
"""
from __future__ import annotations

from typing import Sequence

import torch

POISON_BYTE = 0x7F
# glibc fills each allocation with the complement of MALLOC_PERTURB_'s low byte.
WORKER_ENV = {"MALLOC_PERTURB_": str(POISON_BYTE ^ 0xFF)}


def method(device: torch.device) -> str:
    """How allocations on `device` are poisoned in this process ('none' if they are not)."""
    if device.type == "cuda":
        return "caching allocator"
    probe = torch.empty(4096, dtype=torch.uint8)
    return "malloc" if bool((probe == POISON_BYTE).all()) else "none"


def poison(device: torch.device, nbytes: Sequence[int]) -> None:
    """Before a run whose outputs take `nbytes`: make their allocations start as POISON_BYTE."""
    if device.type != "cuda":
        return
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    blocks = [torch.full((max(n, 1),), POISON_BYTE, dtype=torch.uint8, device=device) for n in nbytes]
    del blocks


def poisoned(t: torch.Tensor) -> torch.Tensor:
    """Mask of the elements of `t` whose every byte is still POISON_BYTE."""
    flat = t.detach().cpu().reshape(-1)
    raw = flat.view(torch.uint8).view(flat.numel(), t.element_size())
    return (raw == POISON_BYTE).all(dim=-1).view(t.shape)
