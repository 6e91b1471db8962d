"""`kevolve cache import FILE`: records from another machine enter the user cache only after checks here:
source hash, torch/triton/family versions, kernel source and genome, the device they were measured on,
and a correctness run of each kernel on this device."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from .cache import Dispatcher, KernelRecord, UserStore, read_records
from .evolve.evaluation import Candidate, Status, family_spec
from .evolve.evaluator import Evaluator
from .families import FAMILIES
from .key import DeviceInfo, OpKey, Problem, bucket


def problem_of(key: OpKey) -> Problem:
    """The representative problem of a key's shape bucket, whose key is `key` again: a dim no bucket holds (not a
    power of two) was kept exact, and stays exact."""
    exact = frozenset(name for name, value in key.shape if bucket(value) != value)
    return Problem(key.family, key.op, key.params, key.shape, key.dtypes, exact, key.strides == "contiguous")


def import_records(path: Path, store: UserStore, judge: Evaluator, say: Callable[[str], None]) -> tuple[int, int]:
    """Check every record of the shipped-format file `path`; store those that pass. (imported, refused)."""
    dispatcher = Dispatcher(None, None)
    families = {f.name: f for f in FAMILIES}
    here = DeviceInfo.of(judge.config.device)
    imported = refused = 0
    for record in read_records(path):
        started = time.monotonic()
        reason = _refusal(record, dispatcher, here)
        if reason is None:
            family = families[record.key.family]
            result = judge.evaluate(Candidate(family_spec(family), record.implementation, record.genome,
                                              problem_of(record.key)))
            if result.status not in (Status.OK, Status.UNMEASURED):
                reason = f"correctness run on {here.name}: {result.status.value}: {result.error[:200]}"
        checked = f"{time.monotonic() - started:.0f} s"
        if reason:
            refused += 1
            say(f"  refused {record.key.digest} {record.key.short()} ({checked}): {reason}")
        else:
            imported += store.put(record)
            say(f"  imported {record.key.digest} {record.key.short()} ({checked})")
    return imported, refused


def _refusal(record: KernelRecord, dispatcher: Dispatcher, here: DeviceInfo) -> str | None:
    reason, level = dispatcher.check(record)
    if reason and level is not None:
        return reason
    if (record.key.device, record.key.capability) != (here.name, here.capability):
        return f"measured on {record.key.device} {record.key.capability}, this device is {here.name} {here.capability}"
    return None
