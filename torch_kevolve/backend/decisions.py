"""NodeDecision: what the kevolve pass did with one ATen node, and a collector for `kevolve explain`."""
from __future__ import annotations

import contextlib
import threading
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


# A process-wide stack, not a ContextVar: backward graphs of CUDA tensors are compiled on autograd's
# device threads, which do not see the caller's context.
_collectors: list[list[NodeDecision]] = []
_lock = threading.Lock()


@contextlib.contextmanager
def collect_decisions() -> Iterator[list[NodeDecision]]:
    """Collect every decision the pass makes in compiles inside this block.

    Inductor's graph caches are bypassed inside it, so that the pass really runs.
    """
    decisions: list[NodeDecision] = []
    with _lock:
        _collectors.append(decisions)
    try:
        with inductor_config.patch(fx_graph_cache=False), functorch_config.patch(enable_autograd_cache=False):
            yield decisions
    finally:
        with _lock:
            _collectors.remove(decisions)


def report(decision: NodeDecision) -> None:
    """Append to the innermost collector, if any."""
    with _lock:
        if _collectors:
            _collectors[-1].append(decision)
