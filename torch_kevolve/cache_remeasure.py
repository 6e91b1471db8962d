"""`kevolve cache remeasure FILE`: the records of a shipped-format file measured again on this device with this
checkout's sources, for records a change to their kernels' modules made stale. Each record's implementation and
genome is evaluated on its key's representative problem (a correctness run and the timing against the compiled
reference), and the new record goes into the user cache, over any record of its key. `--out` writes the new records
too, win or not, for `cache ship --replace`."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Callable

from .cache import KernelRecord, UserStore, read_records
from .cache_import import problem_of
from .evolve.evaluator import Evaluator
from .evolve.tune import tune
from .families import FAMILIES
from .key import DeviceInfo


def remeasure_records(path: Path, store: UserStore, judge: Evaluator, say: Callable[[str], None],
                      keys: re.Pattern | None = None) -> list[KernelRecord | None]:
    """Measure again every record of `path` that was measured on this device (and whose key's text matches `keys`)
    and store the new records; return them, None for each that failed (a record of another device is skipped)."""
    here = DeviceInfo.of(judge.config.device)
    measured: list[KernelRecord | None] = []
    for record in read_records(path):
        if keys is not None and not keys.search(record.key.short()):
            continue
        if (record.key.device, record.key.capability) != (here.name, here.capability):
            say(f"  skipped {record.key.short()}: measured on {record.key.device} {record.key.capability}")
            continue
        new, reason = _measured_again(record, judge)
        measured.append(new)
        if new is None:
            say(f"  failed {record.key.short()}: {reason}")
            continue
        store.put(new, replace=True)
        say(f"  {record.key.short()}: {record.implementation} {new.t_cand_us:.1f} us vs Inductor "
            f"{new.t_ref_us:.1f} us, fitness {record.fitness:.2f} -> {new.fitness:.2f}")
    return measured


def _measured_again(record: KernelRecord, judge: Evaluator) -> tuple[KernelRecord | None, str]:
    """The record of `record`'s implementation and genome measured on `judge`'s device, or None and why not."""
    family = next((f for f in FAMILIES if f.name == record.key.family), None)
    if family is None:
        return None, f"no kernel family {record.key.family!r} in this torch_kevolve"
    try:
        family.implementation(record.implementation).genome_space.validate(record.genome)
    except (KeyError, ValueError) as e:
        return None, f"{record.implementation} {record.genome} is not a genome of this checkout ({e})"
    new, evaluations = tune(family, problem_of(record.key), judge, chosen={record.implementation: [record.genome]})
    if new is None:
        why = "; ".join(f"{r.status.value}: {(r.error or '')[:200]}" for _, r in evaluations)
        return None, why or f"{record.implementation} cannot be timed on {judge.config.device}"
    return dataclasses.replace(new, stats={**new.stats, "method": "remeasured",
                                           "previous": {"fitness": record.fitness, "created": record.created}}), ""
