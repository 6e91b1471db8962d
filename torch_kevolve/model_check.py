"""Check newly stored kernel records against the model they were tuned for, and take back those that slow it.

The evaluator times a kernel alone, on inputs it makes; inside the model the kernel meets its real inputs (views
of other buffers, their alignment) and neighbours, and a record that won alone can lose there (2026-12-04: a TBE
backward measured 620 us alone took twice its kernel time in the DLRM). So: time the model's step (compiled with
backend="kevolve") with the new records and with them hidden; if the step is slower with them, time it without
each one in turn (the ones already discarded staying out) and discard those whose absence makes it faster.
"""
from __future__ import annotations

from typing import Callable

import torch

from .backend.explain import run_step
from .cache import KernelRecord, UserStore
from .evolve.timing import median_us

TOLERANCE = 0.03  # relative step-time difference taken as noise


def step_us(model: torch.nn.Module, inputs: tuple, device: torch.device, options: dict | None = None) -> float:
    """Median time (us, evolve.timing.median_us) of the model's step (backend.explain.run_step) compiled with
    backend="kevolve" over the caches as they are now; the compile runs before the timing."""
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="kevolve", options=options or {})

    def step() -> None:
        run_step(compiled, inputs)
        model.zero_grad(set_to_none=True)

    step()
    us = median_us(step, device)
    torch._dynamo.reset()
    return us


def keep_what_helps(model: torch.nn.Module, inputs: tuple, device: torch.device, records: list[KernelRecord],
                    store: UserStore, options: dict | None = None, say: Callable[[str], None] = print,
                    tolerance: float = TOLERANCE) -> list[KernelRecord]:
    """Of `records` (just stored in `store`), keep those the model's step does not run slower with; discard the
    others from `store` and say why. Returns the records kept."""
    if not records:
        return []
    timed = lambda: step_us(model, inputs, device, options)  # noqa: E731
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
