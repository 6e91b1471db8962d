"""Check newly stored kernel records against the model they were tuned for, and take back those that slow it.

The evaluator times a kernel alone, on inputs it makes; inside the model the kernel meets its real inputs (views
of other buffers, their alignment) and neighbours, and a record that won alone can lose there (2026-12-04: a TBE
backward measured 620 us alone took twice its kernel time in the DLRM). So: time the model's step (compiled with
backend="kevolve") with the new records and with them hidden; if the step is slower with them, time it without
each one in turn (the ones already discarded staying out) and discard those whose absence makes it faster.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from .cache import KernelRecord, UserStore

TOLERANCE = 0.03  # relative step-time difference taken as noise
REPEATS = 20  # timed steps per measurement, after two untimed ones (the first compiles)


def step_us(model: torch.nn.Module, inputs: tuple, device: torch.device, options: dict | None = None,
            repeats: int = REPEATS) -> float:
    """Median wall time (us) of the model's step compiled with backend="kevolve" over the caches as they are now:
    the forward, and the backward of the output's sum when it needs grad (as `explain` runs it)."""
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="kevolve", options=options or {})

    def step() -> None:
        out = compiled(*inputs)
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.sum().backward()
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        step()
        if i >= 2:
            times.append((time.perf_counter() - start) * 1e6)
    torch._dynamo.reset()
    return statistics.median(times)


def keep_what_helps(model: torch.nn.Module, inputs: tuple, device: torch.device, records: list[KernelRecord],
                    store: UserStore, options: dict | None = None, say: Callable[[str], None] = print,
                    tolerance: float = TOLERANCE, repeats: int = REPEATS) -> list[KernelRecord]:
    """Of `records` (just stored in `store`), keep those the model's step does not run slower with; discard the
    others from `store` and say why. Returns the records kept."""
    if not records:
        return []
    timed = lambda: step_us(model, inputs, device, options, repeats)  # noqa: E731
    with_all = timed()
    for record in records:
        store.discard(record.key)
    without = timed()
    for record in records:
        store.put(record, replace=True)
    say(f"model check: step {with_all:.1f} us with the {len(records)} new record(s), {without:.1f} us without")
    if with_all <= without * (1 + tolerance):
        return list(records)
    kept, current = [], with_all
    for record in records:
        store.discard(record.key)
        alone_out = timed()
        if alone_out < current * (1 - tolerance):
            say(f"model check: discarded {record.implementation} {record.key.short()}: the step takes {alone_out:.1f} us "
                f"without it, {current:.1f} us with it, though it measured {record.fitness:.2f}x alone")
            current = alone_out
            continue
        store.put(record, replace=True)
        kept.append(record)
    return kept
