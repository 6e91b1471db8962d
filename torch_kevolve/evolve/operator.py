"""The universal operator: one operator whose move is set by the selected node's context.

It diagnoses the parent's evaluation (and its lineage's failures), retrieves the knowledge entries for
that bottleneck on this hardware, and applies one of their remedies; with probability `explore`, or when
no remedy applies, it mutates one gene at random; given two parents of one implementation it crosses
them over. An LLM-backed operator can replace it behind the same `propose(context, rng)`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Protocol

from ..families.base import Genome, Implementation
from ..key import Problem
from .diagnosis import diagnose
from .knowledge import KnowledgeBase, Remedy
from .search_graph import Node


@dataclass(frozen=True)
class OperatorContext:
    """What the operator sees: the parents, the first parent's lineage, the problem, and the device."""

    parents: tuple[Node, ...]
    lineage: tuple[Node, ...]
    implementation: Implementation
    problem: Problem
    hardware: str
    tried: Callable[[str, Genome], bool]


@dataclass(frozen=True)
class Proposal:
    genome: Genome
    transformation: str


class Operator(Protocol):
    def propose(self, context: OperatorContext, rng: random.Random) -> Proposal | None: ...


class UniversalOperator:
    """Knowledge-guided mutation and crossover over an implementation's genome space."""

    def __init__(self, knowledge: KnowledgeBase | None = None, explore: float = 0.2, attempts: int = 32):
        self.knowledge = knowledge if knowledge is not None else KnowledgeBase()
        self.explore = explore
        self.attempts = attempts

    def propose(self, context: OperatorContext, rng: random.Random) -> Proposal | None:
        """A new, untried genome the implementation supports, and the transformation that made it (None if stuck)."""
        if len(context.parents) == 2:
            return self._crossover(context, rng) or self._mutate(context, rng)
        if rng.random() >= self.explore:
            proposal = self._remedy(context, rng)
            if proposal:
                return proposal
        return self._mutate(context, rng)

    def _fresh(self, context: OperatorContext, genome: Genome | None) -> bool:
        impl = context.implementation
        return (genome is not None and impl.supports(context.problem, genome) is None
                and not context.tried(impl.name, genome))

    def _remedy(self, context: OperatorContext, rng: random.Random) -> Proposal | None:
        parent = context.parents[0]
        diagnosis = diagnose(parent.result, [n.result for n in context.lineage])
        for entry in self.knowledge.retrieve(diagnosis, context.hardware):
            remedies: list[Remedy] = list(entry.remedies)
            rng.shuffle(remedies)
            for remedy in remedies:
                genome = remedy.apply(parent.genome, context.implementation.genome_space, rng)
                if self._fresh(context, genome):
                    return Proposal(genome, f"{diagnosis.bottleneck} -> {entry.title}: {remedy}")
        return None

    def _mutate(self, context: OperatorContext, rng: random.Random) -> Proposal | None:
        parent = context.parents[0]
        choices = [(name, values) for name, values in context.implementation.genome_space.choices if len(values) > 1]
        if not choices:  # a one-genome space: nothing to mutate
            return None
        for _ in range(self.attempts):
            name, values = rng.choice(choices)
            genome = {**parent.genome, name: rng.choice([v for v in values if v != parent.genome[name]])}
            if self._fresh(context, genome):
                return Proposal(genome, f"mutate {name}")
        return None

    def _crossover(self, context: OperatorContext, rng: random.Random) -> Proposal | None:
        a, b = context.parents
        for _ in range(self.attempts):
            genome = {name: (a.genome if rng.random() < 0.5 else b.genome)[name] for name in a.genome}
            if genome not in (a.genome, b.genome) and self._fresh(context, genome):
                return Proposal(genome, f"crossover of #{a.id} and #{b.id}")
        return None
