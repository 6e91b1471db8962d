"""Selection policies: which node(s) of the search graph the operator expands next.

greedy   the fittest node.
uct      Monte-Carlo tree search over the graph: descend by UCB1 (the best fitness in the subtree, normalised
         by the best overall: max-backup suits a deterministic optimisation, plus c * sqrt(ln N / n)); a node
         is expanded while it has fewer than widening * n ** alpha children (progressive widening).
islands  an evolutionary model: nodes live on islands; each step serves the next island by tournament
         selection (crossover of two winners with some probability); every `migrate_every` evaluations
         the best of the previous island joins the pool. Nothing is ever discarded: elites stay selectable.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol

from .search_graph import Node


@dataclass(frozen=True)
class Selection:
    parents: tuple[Node, ...]
    island: int


class Policy(Protocol):
    def select(self, nodes: list[Node], children: dict[int, list[int]], rng: random.Random,
               stuck: set[int]) -> Selection | None:
        """Parents for the next proposal among `nodes` (not the `stuck` ones, whose neighbourhoods are spent)."""


class Greedy:
    def select(self, nodes, children, rng, stuck):
        open_nodes = [n for n in nodes if n.id not in stuck]
        if not open_nodes:
            return None
        best = max(n.fitness for n in open_nodes)
        choice = rng.choice([n for n in open_nodes if n.fitness == best])
        return Selection((choice,), choice.island)


class UCT:
    def __init__(self, c: float = 0.3, widening: float = 1.0, alpha: float = 0.5):
        self.c, self.widening, self.alpha = c, widening, alpha

    def select(self, nodes, children, rng, stuck):
        if len(stuck) >= len(nodes):
            return None
        by_id = {n.id: n for n in nodes}
        has_parent = {c for kids in children.values() for c in kids}
        visits, best_below = {}, {}
        for node in reversed(nodes):  # children are inserted after their parents
            kids = children.get(node.id, [])
            visits[node.id] = 1 + sum(visits[k] for k in kids)
            best_below[node.id] = max([node.fitness] + [best_below[k] for k in kids])
        scale = max(max(n.fitness for n in nodes), 1e-9)
        level = [n.id for n in nodes if n.id not in has_parent]
        while True:
            n_level = sum(visits[i] for i in level)

            def ucb(i):
                return best_below[i] / scale + self.c * math.sqrt(math.log(n_level) / visits[i])

            ranked = sorted(level, key=lambda i: (-ucb(i), i))
            pick = next((i for i in ranked if i not in stuck or children.get(i)), None)
            if pick is None:
                open_nodes = [n for n in nodes if n.id not in stuck]
                choice = rng.choice(open_nodes)
                return Selection((choice,), choice.island)
            kids = children.get(pick, [])
            if pick not in stuck and (not kids or len(kids) < self.widening * visits[pick] ** self.alpha):
                return Selection((by_id[pick],), by_id[pick].island)
            level = kids


class Islands:
    def __init__(self, islands: int = 4, tournament: int = 3, migrate_every: int = 8, crossover: float = 0.3):
        self.islands, self.tournament = islands, tournament
        self.migrate_every, self.crossover = migrate_every, crossover

    def select(self, nodes, children, rng, stuck):
        open_nodes = [n for n in nodes if n.id not in stuck]
        if not open_nodes:
            return None
        island = len(nodes) % self.islands
        pool = [n for n in open_nodes if n.island == island] or open_nodes
        neighbour = [n for n in open_nodes if n.island == (island - 1) % self.islands]
        if neighbour and len(nodes) >= self.migrate_every:
            migrant = max(neighbour, key=lambda n: n.fitness)
            pool = pool + [migrant] if migrant not in pool else pool

        def tournament(among):
            return max(rng.sample(among, min(self.tournament, len(among))), key=lambda n: (n.fitness, -n.id))

        first = tournament(pool)
        mates = [n for n in pool if n.implementation == first.implementation and n.id != first.id]
        if mates and rng.random() < self.crossover:
            return Selection((first, tournament(mates)), island)
        return Selection((first,), island)


POLICIES = {"greedy": Greedy, "uct": UCT, "islands": Islands}
