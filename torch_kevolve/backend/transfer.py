"""Compile-time transfer: on a cache miss, the winner of the nearest solved key of the same operator.

Off by default (option `transfer`). A donor is used only if it is a trusted winner (the dispatcher accepts
its record), its key is within `transfer_distance` (cosine distance of the retrieval vectors) and of the same
overload, and its implementation supports the new problem; the pass then checks it for correctness on the
new key before swapping it in.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from ..cache import Dispatcher, ShippedStore, UserStore
from ..cache.record import KernelRecord
from ..families.base import KernelFamily
from ..key import OpKey, Problem

log = logging.getLogger("torch_kevolve")
CANDIDATES = 5  # nearest keys looked at per miss


@dataclass(frozen=True)
class Donor:
    """A neighbour's record to try on a key, and how far the neighbour is."""

    record: KernelRecord
    distance: float


class NeighbourTransfer:
    """Finds donors among the keys of the user and shipped caches (index built on first use)."""

    def __init__(self, store: UserStore, shipped: ShippedStore | None, dispatcher: Dispatcher, max_distance: float):
        self.store, self.shipped, self.dispatcher, self.max_distance = store, shipped, dispatcher, max_distance

    @functools.cached_property
    def _index(self):
        from ..neighbours import cache_index

        return cache_index(self.store, self.shipped)

    def donor(self, key: OpKey, family: KernelFamily, problem: Problem) -> Donor | None:
        """The nearest trusted winner of another key of `key`'s overload that can run `problem`, or None."""
        for neighbour in self._index.nearest(key, k=CANDIDATES, family=family.name, exclude_self=True):
            if neighbour.distance > self.max_distance:
                break
            if neighbour.key.op != key.op:
                continue
            record = self.dispatcher.choose(neighbour.key).record
            if record is None:
                continue
            try:
                impl = family.implementation(record.implementation)
            except KeyError:
                continue
            if impl.supports(problem, record.genome) is None:
                return Donor(record, neighbour.distance)
        return None
