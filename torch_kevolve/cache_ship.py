"""`kevolve cache ship FILE... --into SHIPPED.json`: winners exported on a measuring machine (`cache export`) enter a
shipped kernel-cache file of the package, each checked against this checkout first as the dispatcher would check
it (source hash, family version, kernel source, genome), its torch and triton versions aside: they are the
measuring machine's, which the file is named for. A key's new record replaces the file's; records Inductor beat
or tied are left out, unless `--replace` ships a re-measure (`cache remeasure --out`): then every record replaces
its key's, and one no longer faster leaves its key to Inductor. Nothing is written when any record fails its
check."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Iterable

from .cache import CacheError, Dispatcher, export_records, read_records, torch_version, triton_version


def _problem(record, dispatcher: Dispatcher) -> str | None:
    """Why this checkout would refuse `record` as unsound on a machine of its own versions (None if it would not;
    a record that Inductor beat or tied is sound)."""
    here = dataclasses.replace(record, torch_version=torch_version(), triton_version=triton_version())
    reason, level = dispatcher.check(here)
    return None if level is None else reason


def ship(paths: Iterable[Path], into: Path, say: Callable[[str], None], replace: bool = False) -> int:
    """Merge the winners of the export files `paths` (with `replace`: all their records) into the shipped file
    `into` (created if missing); return how many records it holds. CacheError naming the first record that fails
    its check (nothing written)."""
    held = {r.key.id: r for r in read_records(into)} if into.exists() else {}
    dispatcher = Dispatcher(None, None)
    for path in paths:
        for record in read_records(path):
            if not record.wins and not replace:
                say(f"  left out ({record.verdict}, fitness {record.fitness:.3f}) {record.key.short()}")
                continue
            problem = _problem(record, dispatcher)
            if problem is not None:
                raise CacheError(f"{path}: {record.key.short()}: {problem}")
            old = held.get(record.key.id)
            was = "" if old is None else f", was {old.implementation} at {old.fitness:.2f}"
            say(f"  {'replaced' if old else 'added'} {record.key.short()}: {record.implementation} at fitness "
                f"{record.fitness:.2f}{was}")
            held[record.key.id] = record
    return export_records(held.values(), into)
