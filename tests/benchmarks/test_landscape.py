"""The landscape measurement's checked path on CPU (a few genomes of a tiny key, interpreted), and searches
replayed on planted landscapes: the exhaustive best, policies reaching it, random sampling's expectation,
transfer ratios and seeding, and the markdown table."""
import dataclasses
import json

import pytest
import torch

from benchmarks import landscape, landscape_replay
from benchmarks.search_grid import GRID, POLICIES, TRITON, grid_problem
from torch_kevolve.evolve.evaluation import Candidate, Status

DEVICE = {"type": "cuda", "name": "NVIDIA H100 80GB HBM3", "capability": "sm_90"}


def test_measure_key_checks_and_times_each_genome_on_cpu(monkeypatch):
    problem = grid_problem(rows=50, dim=16, dtype="float32", indices=24, bag=4)
    chosen = [dict(TRITON.genome_space.default(), BLOCK_D=16), dict(TRITON.genome_space.default(), BLOCK_D=16,
                                                                     BLOCK_N=8, BAGS_PER_PROGRAM=2)]
    few = dataclasses.replace(TRITON, supports=lambda p, g: None if g in chosen else "not in this test")
    monkeypatch.setattr(landscape, "TRITON", few)
    key = landscape.measure_key(problem, "cpu", jobs=0, rep_ms=1)
    assert [row["genome"] for row in key["genomes"]] == chosen
    assert all(row["status"] == "ok" and row["us"] > 0 and row["fitness"] > 0 for row in key["genomes"])
    assert key["reference_us"] > 0 and key["bytes_moved"] > 0 and key["problem"] == problem.to_dict()


def test_a_wrong_genome_scores_zero(monkeypatch):
    problem = grid_problem(rows=50, dim=16, dtype="float32", indices=24, bag=4)
    genome = dict(TRITON.genome_space.default(), BLOCK_D=16)
    broken = dataclasses.replace(TRITON, build=lambda p, g: lambda *args: [a * 2 for a in TRITON.build(p, g)(*args)],
                                 supports=lambda p, g: None if g == genome else "not in this test")
    monkeypatch.setattr(landscape, "TRITON", broken)
    (row,) = landscape.measure_key(problem, "cpu", jobs=0, rep_ms=1)["genomes"]
    assert (row["status"], row["us"], row["fitness"]) == (Status.WRONG.value, None, 0.0)


def planted_key(index: int, best: dict, width: float = 1.0) -> dict:
    """A key of GRID whose fitness falls off with each gene's distance (in choice positions) from `best`."""
    problem = grid_problem(*GRID[index])
    rows = []
    for genome in TRITON.genomes(problem):
        distance = sum(abs(values.index(genome[name]) - values.index(best[name]))
                       for name, values in TRITON.genome_space.choices)
        fitness = 3.0 / (1.0 + distance / width)
        failed = genome["BLOCK_N"] == 1 and genome["num_warps"] == 8  # a planted compile failure
        rows.append({"genome": genome, "status": "compile_error" if failed else "ok", "error": "planted" if failed else "",
                     "us": None if failed else 100.0 / fitness, "fitness": 0.0 if failed else fitness})
    return {"problem": problem.to_dict(), "reference_us": 100.0, "floor_us": 20.0, "ceiling_gbps": 3000.0,
            "bytes_moved": 10**8, "genomes": rows}


BEST = dict(BLOCK_N=16, BLOCK_D=64, BAGS_PER_PROGRAM=2, num_warps=2, num_stages=2)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    other = dict(BEST, BAGS_PER_PROGRAM=8, num_warps=4)
    file = {"device": DEVICE, "keys": [planted_key(0, BEST), planted_key(1, BEST), planted_key(2, other)]}
    return landscape_replay.run(file, seeds=2, budget=40, folder=tmp_path_factory.mktemp("graphs"))


def test_replay_reports_each_key(replayed):
    first = replayed["keys"][0]
    assert first["best_fitness"] == pytest.approx(3.0) and first["genomes"] == len(TRITON.genomes(grid_problem(*GRID[0])))
    assert first["default_fitness"] < first["best_fitness"]
    for k in replayed["keys"]:
        for policy in POLICIES:
            runs = k["evaluations_to_95"][policy]["runs"]
            assert len(runs) == 2 and all(r is None or 1 <= r <= 40 for r in runs)
            curve = k["evaluations_to_95"][policy]["median_best_fraction"]
            assert len(curve) == 40 and all(0 < a <= b <= 1 for a, b in zip(curve, curve[1:]))
            reached = [r for r in runs if r is not None]
            if len(reached) == len(runs):  # every search reached 95% by its last such evaluation
                assert curve[max(reached) - 1] >= 0.95
        assert k["random_expected_draws_to_95"] > 1


def test_some_policy_finds_a_smooth_optimum_faster_than_random(replayed):
    k = replayed["keys"][0]
    reached = [r for p in POLICIES for r in k["evaluations_to_95"][p]["runs"] if r is not None]
    assert reached and min(reached) < k["random_expected_draws_to_95"]


def test_transfer_between_keys_with_one_optimum_is_perfect(replayed):
    pairs = {(p["receiver"], p["donor"]): p for p in replayed["transfer_pairs"]}
    keys = [k["key"] for k in replayed["keys"]]
    assert len(pairs) == 6
    assert pairs[keys[0], keys[1]]["ratio_to_best"] == pytest.approx(1.0)
    assert pairs[keys[0], keys[2]]["ratio_to_best"] < 1.0
    assert all(p["distance"] >= 0 for p in pairs.values())


def test_landscape_evaluation_matches_the_table():
    land = landscape_replay.Landscape(planted_key(0, BEST))
    ok = land.evaluate(Candidate("embedding_bag", TRITON.name, BEST, land.problem))
    assert ok.status is Status.OK and ok.fitness == pytest.approx(3.0)
    assert ok.achieved_gbps == pytest.approx(3000.0)  # 1e8 bytes in 33.3 us
    failed = land.evaluate(Candidate("embedding_bag", TRITON.name, dict(BEST, BLOCK_N=1, num_warps=8), land.problem))
    assert failed.status is Status.COMPILE_ERROR and failed.fitness == 0.0


def test_markdown_and_main(tmp_path, replayed):
    table = landscape_replay.markdown(replayed)
    assert table.count("\n| ") == len(replayed["keys"]) and "num_weights=100000" in table
    assert "Transfer (all 6 ordered pairs)" in table
    file = tmp_path / "landscape.json"
    file.write_text(json.dumps({"device": DEVICE, "keys": [planted_key(0, BEST), planted_key(3, BEST)]}))
    assert landscape_replay.main([str(file), str(tmp_path / "replay.json"), "--seeds", "1", "--budget", "6"]) == 0
    assert json.loads((tmp_path / "replay.json").read_text())["budget"] == 6
    assert (tmp_path / "replay.md").exists() and (tmp_path / "replay.png").read_bytes()[:4] == b"\x89PNG"


def test_landscape_skips_cleanly_without_cuda(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert landscape.main([str(tmp_path / "out.json")]) == 0
    assert "needs a CUDA device" in capsys.readouterr().out and not (tmp_path / "out.json").exists()
