"""Dispatcher: the cached kernel to run for an OpKey, used only while it is intact, current and faster than Inductor."""
from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Iterator, Sequence

from ..families.base import KernelFamily
from ..key import OpKey
from .errors import CacheError
from .record import TIE_FITNESS, KernelRecord, torch_version, triton_version
from .shipped import ShippedStore
from .store import UserStore

log = logging.getLogger("torch_kevolve")


@dataclass(frozen=True)
class Choice:
    """The record to run for a key (None: leave the node to Inductor) and why, in words for `kevolve explain`."""

    record: KernelRecord | None
    reason: str

    def __bool__(self) -> bool:
        return self.record is not None


class Dispatcher:
    """Chooses the user cache's record for a key, else the shipped one, refusing records that cannot be trusted.

    `families` defaults to `torch_kevolve.families.FAMILIES`, imported on first use.
    """

    def __init__(
        self,
        user_store: UserStore | None,
        shipped_store: ShippedStore | None,
        families: Sequence[KernelFamily] | None = None,
    ):
        stores = (("user cache", user_store), ("shipped cache", shipped_store))
        self._stores = {origin: store for origin, store in stores if store is not None}
        self._given_families = families
        self._unavailable: list[str] = []
        self._logged: set[tuple[str, str]] = set()
        self._source_sha256: dict[tuple[str, str], str] = {}

    def choose(self, key: OpKey) -> Choice:
        """The first record (user cache, then shipped) that passes every check, else no record and why."""
        refusals = []
        for origin, store in list(self._stores.items()):
            try:
                record = store.get(key)
            except CacheError as e:
                self._drop(origin, e)
                continue
            if record is None:
                continue
            problem, level = self.check(record)
            if problem is None:
                return Choice(record, f"{origin}: {record.implementation} measured {record.t_cand_us:.1f} us vs "
                                      f"Inductor {record.t_ref_us:.1f} us (fitness {record.fitness:.2f})")
            refusals.append(f"{origin}: {problem}")
            if level is not None and (origin, key.id) not in self._logged:
                self._logged.add((origin, key.id))
                log.log(level, "kevolve: ignoring the %s record for %s: %s", origin, key.short(), problem)
        return Choice(None, "; ".join(refusals + self._unavailable) or "no cached kernel for this key")

    def winners_like(self, key: OpKey, varying: frozenset[str]) -> Iterator[Choice]:
        """The trusted records of the keys (`key`'s own among them) that differ from `key` in the shape dims
        `varying` alone, largest first (by the product of those dims): what may run a call whose `varying` dims
        change from run to run. Each key is read and checked only when the caller asks for the next."""
        fixed = [(name, size) for name, size in key.shape if name not in varying]
        alike = [k for k in self._keys.get(_identity(key), ()) if [d for d in k.shape if d[0] not in varying] == fixed]
        alike.sort(key=lambda k: (-math.prod(size for name, size in k.shape if name in varying), k.id))
        return (choice for choice in map(self.choose, alike) if choice)

    @functools.cached_property
    def _keys(self) -> dict[tuple, list[OpKey]]:
        """Every stored key (each store's keys, distinct), by everything but its shape: read once per dispatcher,
        which a compile makes afresh."""
        keys: dict[str, OpKey] = {}
        for origin, store in list(self._stores.items()):
            try:
                keys.update((k.id, k) for k in store.keys())
            except CacheError as e:
                self._drop(origin, e)
        grouped: dict[tuple, list[OpKey]] = {}
        for k in keys.values():
            grouped.setdefault(_identity(k), []).append(k)
        return grouped

    def fingerprint(self) -> str:
        """Changes whenever a store's contents change (an unreadable store counts as empty)."""
        parts = []
        for origin, store in list(self._stores.items()):
            try:
                parts.append(f"{origin}={store.fingerprint()}")
            except CacheError as e:
                self._drop(origin, e)
        return ";".join(parts)

    def check(self, record: KernelRecord) -> tuple[str | None, int | None]:
        """Why `record` must not run (None if it may) and the log level of that finding. A level of None marks
        the findings that are no defect: the record is sound, but Inductor measured faster, or tied with it."""
        if not record.hash_ok():
            return "source hash mismatch (tampered?)", logging.WARNING
        if record.torch_version != torch_version():
            return f"measured with torch {record.torch_version}, running torch {torch_version()}", logging.INFO
        if record.triton_version != triton_version():
            return f"measured with triton {record.triton_version}, running triton {triton_version()}", logging.INFO
        family = self._families.get(record.key.family)
        if family is None:
            return f"stale: no kernel family {record.key.family!r} in this torch_kevolve", logging.INFO
        if family.version != record.family_version:
            return (f"stale: family {family.name} is version {family.version}, "
                    f"the record was measured with version {record.family_version}"), logging.INFO
        try:
            implementation = family.implementation(record.implementation)
        except KeyError:
            return f"stale: family {family.name} has no implementation {record.implementation!r}", logging.INFO
        sha_key = (family.name, implementation.name)
        if sha_key not in self._source_sha256:
            self._source_sha256[sha_key] = implementation.source_sha256()
        if self._source_sha256[sha_key] != record.source_sha256:
            return "stale: kernel source changed since it was measured", logging.INFO
        try:
            implementation.genome_space.validate(record.genome)
        except ValueError as e:
            return f"stale: genome no longer valid ({e})", logging.INFO
        if not record.wins:
            return (f"{record.verdict} (fitness {record.fitness:.3f}; a kernel runs above {TIE_FITNESS}, beyond what "
                    f"measuring again moves it)"), None
        return None, None

    def _drop(self, origin: str, error: CacheError) -> None:
        """Stop reading the store `origin` (unreadable) for this dispatcher's life."""
        del self._stores[origin]
        self._unavailable.append(f"{origin} unavailable: {error}")
        log.warning("kevolve: ignoring the %s for this process: %s", origin, error)

    @functools.cached_property
    def _families(self) -> dict[str, KernelFamily]:
        if self._given_families is None:
            from ..families import FAMILIES

            return {f.name: f for f in FAMILIES}
        return {f.name: f for f in self._given_families}


def _identity(key: OpKey) -> tuple:
    """Everything of `key` but its shape."""
    return key.family, key.op, key.params, key.dtypes, key.strides, key.device, key.capability
