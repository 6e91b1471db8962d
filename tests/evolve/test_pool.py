"""LocalPool and the pool interface on CPU: a search over a pool equals the single-process search when one
candidate is in flight, fills its width otherwise, and several keys share one pool; the search graph takes
concurrent writer processes; GPU slots are pinned; without Ray a local pool stands in."""
import functools
import json
import sqlite3
import sys
import time

import pytest
import torch

from tests.evolve.landscape import HashJudge, LandscapeJudge, landscape_result
from tests.evolve.pool_searches import check_keys_at_once, check_pool_search
from tests.writers import run_writers
from torch_kevolve.evolve.evaluation import EvaluationResult, Status
from torch_kevolve.evolve.evaluator import EvaluatorConfig
from torch_kevolve.evolve.pool import InlinePool, LocalPool, make_pool
from torch_kevolve.evolve.search_graph import SearchGraph
from torch_kevolve.evolve.worker_process import worker_environment

CPU = EvaluatorConfig(device="cpu")


@pytest.fixture
def pool():
    with LocalPool(CPU, workers=2, make_judge=functools.partial(LandscapeJudge, delay_s=0.002)) as pool:
        yield pool


def test_a_search_over_a_local_pool_matches_the_single_process_run(pool, tmp_path):
    check_pool_search(pool, tmp_path)


def test_several_keys_at_once_over_one_local_pool(pool, tmp_path):
    check_keys_at_once(pool, tmp_path)


def test_the_pool_runs_its_width_at_once(tmp_path):
    from tests.evolve.landscape import IMPL, backward_problem
    from torch_kevolve.evolve.evaluation import Candidate

    candidates = [Candidate("spec", IMPL.name, g, backward_problem()) for g in IMPL.genomes(backward_problem())[:4]]
    with LocalPool(CPU, workers=4, make_judge=functools.partial(LandscapeJudge, delay_s=0.5)) as pool:
        start = time.monotonic()
        results = [f.result() for f in [pool.submit(c) for c in candidates]]
        elapsed = time.monotonic() - start
    assert results == [landscape_result(c) for c in candidates]
    assert elapsed < 1.5  # four half-second evaluations, at once


def test_warm_evolves_keys_at_once_over_a_pool_as_it_does_one_by_one(tmp_path):
    from benchmarks.models.dlrm import build
    from tests.test_warm import EMBEDDING_FAMILIES, TINY
    from torch_kevolve.evolve.search import SearchConfig
    from torch_kevolve.evolve.termination import Termination
    from torch_kevolve.warm import warm

    model, inputs = build(TINY, "cpu")
    search = SearchConfig(policy="greedy", termination=Termination(max_evaluations=6, roofline=None))
    runs = {}
    for workers in (1, 2):
        options = {"cache_dir": str(tmp_path / str(workers)), "families": EMBEDDING_FAMILIES}
        said = []
        records = warm(model, inputs, torch.device("cpu"), options, say=said.append, verbose=False, search=search,
                       workers=workers, make_judge=HashJudge)
        graph = SearchGraph(tmp_path / str(workers) / "search.sqlite")
        runs[workers] = ({r.key.digest: (r.implementation, r.genome, r.fitness) for r in records},
                         {s: sorted(json.dumps([n.implementation, n.genome]) for n in graph.nodes(s))
                          for s in graph.searches()})
        assert len(records) == len(runs[workers][1]) >= 2 and all(len(n) <= 6 for n in runs[workers][1].values())
    assert "evaluating on a local pool of 2 workers" in said
    assert runs[1] == runs[2]  # the same nodes (their order may differ: seeds come from keys solved earlier)


def test_a_failed_evaluation_stops_the_search_after_the_others_land(tmp_path):
    from tests.evolve.pool_searches import landscape_search

    calls = []

    def evaluate(candidate):
        calls.append(candidate)
        if len(calls) == 3:
            raise RuntimeError("the reference could not be prepared")
        return landscape_result(candidate)

    with pytest.raises(RuntimeError, match="could not be prepared"):
        landscape_search(InlinePool(evaluate), tmp_path / "g.sqlite", budget=10)
    graph = SearchGraph(tmp_path / "g.sqlite")
    assert len(graph.nodes(graph.searches()[0])) == 2


def _add_nodes(path: str, worker: int, count: int, start) -> None:
    """Spawned writer: `count` nodes of its own search, each with an edge to the previous one."""
    graph = SearchGraph(path)
    start.wait()
    previous = ()
    for i in range(count):
        node = graph.add(f"search{worker}", "impl", "triton", {"i": i}, "sha",
                         EvaluationResult(Status.OK, fitness=1.0 + i), 0, previous)
        previous = ((node.id, "step"),)
    graph.close()


def test_the_search_graph_takes_concurrent_writer_processes(tmp_path):
    workers, count = 3, 60
    path = str(tmp_path / "search.sqlite")
    # forked: the writers need nothing but SearchGraph
    assert run_writers(_add_nodes, [(path, w, count) for w in range(workers)], "fork") == [0] * workers
    graph = SearchGraph(path)
    for w in range(workers):
        nodes = graph.nodes(f"search{w}")
        assert [n.genome["i"] for n in nodes] == list(range(count))
        assert [a.genome["i"] for a, _ in graph.lineage(nodes[-1].id)] == list(range(count - 2, -1, -1))
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_gpu_slots_are_pinned_one_gpu_each(monkeypatch):
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    pool = LocalPool(EvaluatorConfig(device="cuda"), workers=3, make_judge=functools.partial(LandscapeJudge))
    assert [slot.config.gpu for slot in pool._slots] == [0, 1, 0]
    pool.close()
    assert LocalPool(EvaluatorConfig(device="cuda"), make_judge=LandscapeJudge).width == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert worker_environment(1)["CUDA_VISIBLE_DEVICES"] == "6"
    assert worker_environment(None)["CUDA_VISIBLE_DEVICES"] == "4,6"


def test_without_ray_a_ray_address_falls_back_to_a_local_pool(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.delitem(sys.modules, "torch_kevolve.evolve.ray_pool", raising=False)
    said = []
    with make_pool(CPU, 2, "ray://nowhere:10001", said.append, LandscapeJudge) as pool:
        assert isinstance(pool, LocalPool) and pool.width == 2
    assert "Ray is not installed" in said[0]
