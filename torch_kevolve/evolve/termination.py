"""When a search stops: evaluation budget, wall clock, plateau, target fitness, or a fraction of the roofline."""
from __future__ import annotations

import time
from dataclasses import dataclass

from .search_graph import Node


@dataclass(frozen=True)
class Termination:
    """Stop rules (None disables one). `plateau`: evaluations without a better fitness; `roofline`:
    achieved / measured copy bandwidth of the best node."""

    max_evaluations: int | None = 64
    wall_seconds: float | None = None
    plateau: int | None = None
    target_fitness: float | None = None
    roofline: float | None = 0.9

    def reason(self, nodes: list[Node], started: float, evaluated_here: int, in_flight: int = 0) -> str | None:
        """Why the search must stop now, or None. `evaluated_here` counts this run's evaluations only;
        `in_flight` the candidates submitted whose results have not arrived (they count against the budget)."""
        if self.max_evaluations is not None and len(nodes) + in_flight >= self.max_evaluations:
            return f"evaluation budget ({self.max_evaluations}) spent"
        if self.wall_seconds is not None and evaluated_here and time.monotonic() - started >= self.wall_seconds:
            return f"wall-clock budget ({self.wall_seconds:g} s) spent"
        if not nodes:
            return None
        best = max(nodes, key=lambda n: n.fitness)
        if self.target_fitness is not None and best.fitness >= self.target_fitness:
            return f"target fitness {self.target_fitness:g} reached ({best.fitness:.3f})"
        r = best.result
        if (self.roofline is not None and r.achieved_gbps and r.ceiling_gbps
                and r.achieved_gbps >= self.roofline * r.ceiling_gbps):
            return f"{r.achieved_gbps / r.ceiling_gbps:.0%} of the copy ceiling reached"
        if self.plateau is not None:
            best_at = next(i for i, n in enumerate(nodes) if n.fitness >= best.fitness)
            if len(nodes) - 1 - best_at >= self.plateau:
                return f"plateau: no better fitness in {self.plateau} evaluations"
        return None
