"""The evolutionary search of one cache key: draft phase, then selection -> operator -> evaluation, until
a termination rule fires. Every evaluation is a node of the persisted SearchGraph, so a search resumes.

fitness = t_reference / t_candidate (0 for any failure), as the Evaluator measures it.
"""
from __future__ import annotations

import hashlib
import json
import random
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..cache import KernelRecord
from ..families.base import Genome, Implementation, KernelFamily
from ..key import DeviceInfo, OpKey, Problem
from .evaluation import Candidate, EvaluationResult, family_spec
from .operator import Operator, OperatorContext, UniversalOperator
from .policies import POLICIES, Policy
from .pool import EvaluationPool, InlinePool
from .search_graph import Node, SearchGraph
from .termination import Termination

Evaluate = Callable[[Candidate], EvaluationResult]


@dataclass(frozen=True)
class SearchConfig:
    """policy: greedy | uct | islands; drafts: independent samples before any expansion (seeds first,
    then each implementation's default genome, then random genomes); c: UCT's exploration constant
    (0.3: fitness is normalised by the best found, so larger values mostly revisit poor branches)."""

    policy: str = "uct"
    drafts: int = 4
    seed: int = 0
    c: float = 0.3
    islands: int = 4
    explore: float = 0.2
    termination: Termination = field(default_factory=Termination)

    def make_policy(self) -> Policy:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose from {sorted(POLICIES)}")
        if self.policy == "uct":
            return POLICIES["uct"](c=self.c)
        if self.policy == "islands":
            return POLICIES["islands"](islands=self.islands)
        return POLICIES[self.policy]()


@dataclass(frozen=True)
class SearchOutcome:
    best: Node | None
    evaluations: int
    new_evaluations: int
    reason: str


class Search:
    """Searches `implementations` of `family` for `problem`; nodes go to `graph` under search_id (the key's
    digest and the searched kernels' version and sources: nodes timed on other sources are not evidence). Seeds
    whose genome the implementation's space rejects are dropped. Candidates are judged by `evaluate` (a function,
    or a pool; `width` of them at once, by default the pool's width): with one at a time the search is
    deterministic for a given seed and landscape."""

    def __init__(self, family: KernelFamily, problem: Problem, implementations: Sequence[Implementation],
                 evaluate: Evaluate | EvaluationPool, graph: SearchGraph, device: DeviceInfo,
                 config: SearchConfig = SearchConfig(), operator: Operator | None = None,
                 seeds: Sequence[tuple[str, Genome]] = (), width: int | None = None):
        if not implementations:
            raise ValueError(f"no implementation of {family.name} to search on {device.name}")
        self.family, self.problem, self.graph, self.device = family, problem, graph, device
        self.pool = evaluate if isinstance(evaluate, EvaluationPool) else InlinePool(evaluate)
        self.width = width or self.pool.width
        self.implementations = {impl.name: impl for impl in implementations}
        self.config = config
        self.policy = config.make_policy()
        self.operator = operator or UniversalOperator(explore=config.explore)
        self.seeds = [(name, g) for name, g in seeds
                      if name in self.implementations and _valid(self.implementations[name], g)]
        self._defaults = [(impl.name, g) for impl in implementations if (g := impl.default_genome(problem)) is not None]
        self.key = OpKey.of(problem, device)
        self.id = search_id(self.key, family, implementations)
        self._spec = family_spec(family)
        self._flying: set[str] = set()  # candidates submitted, not yet in the graph

    def run(self, progress: Callable[[Node], None] | None = None) -> SearchOutcome:
        """Evolve until a termination rule fires, keeping up to `width` candidates in flight and recording each
        result as it arrives (in flight ones count against the budget and are never proposed twice). A
        failed evaluation (an EvaluatorSetupError...) stops new proposals; it is raised once the rest land."""
        started, new = time.monotonic(), 0
        nodes = self.graph.nodes(self.id)
        rng = random.Random(self.config.seed * 1_000_003 + len(nodes))
        stuck: set[int] = set()
        flying: dict[Future, tuple] = {}
        reason, error = None, None
        while True:
            while reason is None and error is None and len(flying) < self.width:
                reason = self.config.termination.reason(nodes, started, new, in_flight=len(flying))
                if reason:
                    break
                if self._drafts_left(nodes, flying):
                    step = self._draft(nodes, rng, len(flying))
                else:
                    step = self._expand(nodes, rng, stuck)
                if step is None:
                    reason = None if flying else "search space exhausted"
                    break
                impl, genome = step[0], step[1]
                flying[self.pool.submit(Candidate(self._spec, impl.name, genome, self.problem))] = step
                self._flying.add(_genome_id(impl.name, genome))
            if not flying:
                break
            done, _ = wait(flying, return_when=FIRST_COMPLETED)
            for future in [f for f in flying if f in done]:
                impl, genome, island, parents = flying.pop(future)
                self._flying.discard(_genome_id(impl.name, genome))
                try:
                    result = future.result()
                except Exception as e:
                    error = error or e
                    continue
                node = self.graph.add(self.id, impl.name, impl.abstraction.value, genome, impl.source_sha256(),
                                      result, island, parents)
                nodes.append(node)
                new += 1
                if progress:
                    progress(node)
        if error is not None:
            raise error
        return SearchOutcome(self.graph.best(self.id), len(nodes), new, reason)

    def record(self, outcome: SearchOutcome) -> KernelRecord | None:
        """The best node as a cache record (fitness <= 1 records that Inductor wins); None if none was timed."""
        best = outcome.best
        if best is None or best.result.t_cand_us is None or best.fitness <= 0:
            return None
        statuses: dict[str, int] = {}
        for node in self.graph.nodes(self.id):
            statuses[node.status] = statuses.get(node.status, 0) + 1
        return KernelRecord.measured(
            key=self.key, family=self.family, implementation=self.implementations[best.implementation],
            genome=best.genome, t_ref_us=best.result.t_ref_us, t_cand_us=best.result.t_cand_us,
            achieved_gbps=best.result.achieved_gbps,
            stats={"method": f"evolve ({self.config.policy})", "evaluated": outcome.evaluations,
                   "statuses": statuses, "stopped": outcome.reason, "node": best.id})

    def _drafts_left(self, nodes: list[Node], flying: dict[Future, tuple]) -> bool:
        children = {c for kids in self.graph.children(self.id).values() for c in kids}
        drafts = sum(1 for n in nodes if n.id not in children) + sum(1 for step in flying.values() if not step[3])
        return drafts < self.config.drafts

    def _tried(self, implementation: str, genome: Genome) -> bool:
        return (_genome_id(implementation, genome) in self._flying
                or self.graph.find(self.id, implementation, genome) is not None)

    def _draft(self, nodes: list[Node], rng: random.Random, flying: int):
        """An independent sample: a seed, an implementation's default genome (adapted to the problem), or a random
        supported genome."""
        island = (len(nodes) + flying) % max(self.config.islands, 1)
        for name, genome in self.seeds + self._defaults:
            impl = self.implementations[name]
            if impl.supports(self.problem, genome) is None and not self._tried(name, genome):
                return impl, genome, island, ()
        for _ in range(64):
            impl = rng.choice(list(self.implementations.values()))
            genome = {name: rng.choice(values) for name, values in impl.genome_space.choices}
            if impl.supports(self.problem, genome) is None and not self._tried(impl.name, genome):
                return impl, genome, island, ()
        return self._expand(nodes, rng, set())

    def _expand(self, nodes: list[Node], rng: random.Random, stuck: set[int]):
        """Select parent(s) and let the operator propose a child; parents whose neighbourhood is spent are skipped."""
        children = self.graph.children(self.id)
        while True:
            selection = self.policy.select(nodes, children, rng, stuck)
            if selection is None:
                return None
            first = selection.parents[0]
            impl = self.implementations.get(first.implementation)
            if impl is None:
                stuck.add(first.id)
                continue
            context = OperatorContext(selection.parents, tuple(n for n, _ in self.graph.lineage(first.id)), impl,
                                      self.problem, self.device.capability or self.device.type, self._tried)
            proposal = self.operator.propose(context, rng)
            if proposal is not None:
                parents = tuple((p.id, proposal.transformation) for p in selection.parents)
                return impl, proposal.genome, selection.island, parents
            stuck.update(p.id for p in selection.parents)


def search_id(key: OpKey, family: KernelFamily, implementations: Sequence[Implementation]) -> str:
    """The graph's name for the search of `key` over these kernels: the key's digest and a digest of the
    family's version and the implementations' sources (a source change starts a new search)."""
    sources = json.dumps([family.version] + sorted((i.name, i.source_sha256()) for i in implementations))
    return f"{key.digest}-{hashlib.sha256(sources.encode()).hexdigest()[:12]}"


def key_digest(search: str) -> str:
    """The key digest a search id (search_id) starts with."""
    return search.partition("-")[0]


def _valid(implementation: Implementation, genome: Genome) -> bool:
    try:
        implementation.genome_space.validate(genome)
    except ValueError:
        return False
    return True


def _genome_id(implementation: str, genome: Genome) -> str:
    return implementation + json.dumps(genome, sort_keys=True)
