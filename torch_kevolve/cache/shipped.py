"""ShippedStore: the reviewed, read-only kernel cache shipped in the package as JSON files, and their format."""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterable

from ..key import OpKey
from ..partial_files import partial_path
from .errors import CacheError
from .record import KernelRecord

FORMAT = 1
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "kernel_cache"
log = logging.getLogger("torch_kevolve")


def export_records(records: Iterable[KernelRecord], path: str | os.PathLike) -> int:
    """Write `records` to the JSON file `path` in the shipped format (atomically); return how many."""
    path = Path(path)
    records = sorted(records, key=lambda r: r.key.id)
    text = json.dumps({"format": FORMAT, "records": [r.to_dict() for r in records]}, indent=1, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    partial.write_text(text + "\n", encoding="utf-8")
    os.replace(partial, path)
    return len(records)


def read_records(path: str | os.PathLike) -> list[KernelRecord]:
    """The records of a shipped-format JSON file; CacheError naming the file when it is malformed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CacheError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(data, dict) or set(data) != {"format", "records"} or not isinstance(data["records"], list):
        raise CacheError(f'{path}: expected an object {{"format": {FORMAT}, "records": [...]}}')
    if data["format"] != FORMAT:
        raise CacheError(f"{path}: format {data['format']!r}, this torch_kevolve reads format {FORMAT}")
    try:
        return [KernelRecord.from_dict(d) for d in data["records"]]
    except CacheError as e:
        raise CacheError(f"{path}: {e}") from None


class ShippedStore:
    """Every record of the *.json files in `directory` (the package's kernel_cache/ by default), fittest per key.

    Malformed files are skipped with a warning; the store never changes after it is built. Files read before in
    this process, with the same bytes, are not parsed again (each compile builds a store).
    """

    def __init__(self, directory: str | os.PathLike = PACKAGE_DIR):
        self.directory = Path(directory)
        files = tuple((path, path.read_bytes()) for path in sorted(self.directory.glob("*.json")))
        snapshot = (str(self.directory.resolve()), tuple((p.name, hashlib.sha256(b).hexdigest()) for p, b in files))
        parsed = _PARSED.get(snapshot)
        if parsed is None:
            parsed = _fittest_per_key(path for path, _ in files)
            _PARSED.clear()  # one snapshot per process is the common case: keep memory flat
            _PARSED[snapshot] = parsed
        self._records, self._fingerprint = parsed

    def get(self, key: OpKey) -> KernelRecord | None:
        return self._records.get(key.id)

    def records(self) -> list[KernelRecord]:
        return [self._records[k] for k in sorted(self._records)]

    def keys(self) -> list[OpKey]:
        return [self._records[k].key for k in sorted(self._records)]

    def fingerprint(self) -> str:
        """A short text that differs between stores of different contents."""
        return self._fingerprint


_PARSED: dict[tuple, tuple[dict[str, KernelRecord], str]] = {}


def _fittest_per_key(paths: Iterable[Path]) -> tuple[dict[str, KernelRecord], str]:
    """key id -> the fittest record of the shipped-format files `paths` (malformed files skipped with a
    warning), and a fingerprint of the result."""
    records: dict[str, KernelRecord] = {}
    for path in paths:
        try:
            read = read_records(path)
        except CacheError as e:
            log.warning("skipping shipped kernel cache file: %s", e)
            continue
        for record in read:
            held = records.get(record.key.id)
            if held is None or record.fitness > held.fitness:
                records[record.key.id] = record
    text = json.dumps([records[k].to_dict() for k in sorted(records)], sort_keys=True)
    return records, hashlib.sha256(text.encode()).hexdigest()[:16]
