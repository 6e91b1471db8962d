"""Searches of the synthetic landscape over an evaluation pool, shared by the LocalPool and RayPool tests."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.evolve.landscape import H100, IMPL, OPTIMUM, PEAK, backward_problem, synthetic_evaluate
from torch_kevolve.evolve.search import Search, SearchConfig
from torch_kevolve.evolve.search_graph import SearchGraph
from torch_kevolve.evolve.termination import Termination
from torch_kevolve.families import EMBEDDING_BAG_BACKWARD


def landscape_search(evaluate, path: Path, budget: int, width: int | None = None, bags: int = 32,
                     policy: str = "uct") -> tuple[list[tuple], float]:
    """Run a search of `budget` evaluations; every node as (implementation, genome, fitness, parents) in
    graph order, and the best fitness."""
    graph = SearchGraph(path)
    config = SearchConfig(policy=policy, termination=Termination(max_evaluations=budget, roofline=None))
    search = Search(EMBEDDING_BAG_BACKWARD, backward_problem(bags), [IMPL], evaluate, graph, H100, config,
                    width=width)
    outcome = search.run()
    children = graph.children(search.id)
    parents = {child: parent for parent, kids in children.items() for child in kids}
    ids = {n.id: i for i, n in enumerate(graph.nodes(search.id))}
    nodes = [(n.implementation, n.genome, n.fitness, n.status, ids.get(parents.get(n.id)))
             for n in graph.nodes(search.id)]
    graph.close()
    return nodes, outcome.best.fitness


def single_process(path: Path, budget: int) -> list[tuple]:
    """The reference: the same search, its evaluations called in this thread one at a time."""
    return landscape_search(synthetic_evaluate([]), path, budget)[0]


def check_pool_search(pool, tmp_path: Path) -> None:
    """One at a time over the pool: the single-process search exactly; all of its width at once: every
    evaluation recorded once, and the optimum found."""
    reference = single_process(tmp_path / "reference.sqlite", budget=24)
    one_at_a_time, _ = landscape_search(pool, tmp_path / "one.sqlite", budget=24, width=1)
    assert one_at_a_time == reference
    nodes, best = landscape_search(pool, tmp_path / "wide.sqlite", budget=90, policy="greedy")
    assert len(nodes) == 90 and len({str(sorted(g.items())) for _, g, *_ in nodes}) == 90
    assert best == PEAK and OPTIMUM in [g for _, g, *_ in nodes]


def check_keys_at_once(pool, tmp_path: Path) -> None:
    """Two keys searched at once over the pool, both into one graph file: each equals its single-process run."""
    path = tmp_path / "shared.sqlite"
    with ThreadPoolExecutor(2) as keys:
        runs = list(keys.map(lambda bags: landscape_search(pool, path, budget=16, width=1, bags=bags), (32, 48)))
    for bags, (nodes, _) in zip((32, 48), runs):
        reference, _ = landscape_search(synthetic_evaluate([]), tmp_path / f"alone{bags}.sqlite", budget=16, bags=bags)
        assert nodes == reference
    assert len(SearchGraph(path).searches()) == 2
