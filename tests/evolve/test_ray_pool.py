"""RayPool on a local Ray cluster of CPU workers: a search end to end equals the single-process run one
candidate at a time and fills its width otherwise; several keys share the pool; an actor killed
mid-search loses no node (its candidate is retried on a replacement, or scored CRASH if that dies too).
One Ray session and one pool of two actors serve the whole module."""
import functools
import json
import os

import pytest

from tests.evolve.landscape import IMPL, LandscapeJudge, landscape_result
from tests.evolve.pool_searches import check_keys_at_once, check_pool_search, landscape_search
from torch_kevolve.evolve.evaluation import EvaluationResult, Status
from torch_kevolve.evolve.evaluator import EvaluatorConfig

ray = pytest.importorskip("ray")
from torch_kevolve.evolve.ray_pool import RayPool  # noqa: E402 (needs Ray)


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    """The directory whose files tell the actors' judges when to kill their own process."""
    return tmp_path_factory.mktemp("control")


@pytest.fixture(scope="module")
def pool(control):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": root}})
    judge = functools.partial(LandscapeJudge, delay_s=0.002, control=str(control))
    try:
        with RayPool(EvaluatorConfig(device="cpu"), workers=2, make_judge=judge) as pool:
            yield pool
    finally:
        ray.shutdown()


def test_a_search_over_ray_actors_matches_the_single_process_run(pool, tmp_path):
    assert pool.width == 2 and len(set(pool.actor_pids())) == 2
    check_pool_search(pool, tmp_path)


def test_several_keys_at_once_over_one_ray_pool(pool, tmp_path):
    check_keys_at_once(pool, tmp_path)


def test_a_killed_actor_loses_no_node(pool, control, tmp_path):
    """The 5th evaluation kills its actor once (retried on a replacement); the default genome, drafted
    first, kills every actor that judges it (scored CRASH after one retry)."""
    default = IMPL.genome_space.default()
    (control / "ledger").write_text("")
    (control / "kill_at").write_text("5")
    (control / "always_kill").write_text(json.dumps(default))
    try:
        nodes, _ = landscape_search(pool, tmp_path / "killed.sqlite", budget=12, width=1)
    finally:
        for name in ("kill_at", "always_kill"):
            (control / name).unlink()
    crash = EvaluationResult(Status.CRASH, "died")
    reference, _ = landscape_search(lambda c: crash if c.genome == default else landscape_result(c),
                                    tmp_path / "reference.sqlite", budget=12, width=1)
    assert nodes == reference  # the same nodes, the default genome scored 0 in both
    crashed = [n for n in nodes if n[3] == "crash"]
    assert [n[1] for n in crashed] == [default] and crashed[0][2] == 0
    assert all(n[3] == "ok" for n in nodes if n[1] != default)
    assert pool.replacements == 3
    ledger = (control / "ledger").read_text().splitlines()
    assert len(ledger) == 12 + 2  # the default genome judged twice, the 5th evaluation once more
    assert len(set(pool.actor_pids())) == 2
