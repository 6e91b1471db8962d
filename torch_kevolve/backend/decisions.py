"""NodeDecision: what the kevolve pass did with one ATen node, and a collector for `kevolve explain`."""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Iterator

import torch._functorch.config as functorch_config
import torch._inductor.config as inductor_config

from ..key import Problem


@dataclass(frozen=True)
class NodeDecision:
    """One ATen node seen by the pass: claimed by a kevolve kernel, or left to Inductor and why."""

    graph: str
    node: str
    op: str
    family: str | None
    key: str | None
    claimed: bool
    implementation: str | None
    genome: dict | None
    reason: str
    problem: Problem | None = None


_collector: contextvars.ContextVar[list[NodeDecision] | None] = contextvars.ContextVar("kevolve_decisions", default=None)


@contextlib.contextmanager
def collect_decisions() -> Iterator[list[NodeDecision]]:
    """Collect every decision the pass makes in compiles inside this block.

    Inductor's graph caches are bypassed inside it, so that the pass really runs.
    """
    decisions: list[NodeDecision] = []
    token = _collector.set(decisions)
    try:
        with inductor_config.patch(fx_graph_cache=False), functorch_config.patch(enable_autograd_cache=False):
            yield decisions
    finally:
        _collector.reset(token)


def report(decision: NodeDecision) -> None:
    decisions = _collector.get()
    if decisions is not None:
        decisions.append(decision)
