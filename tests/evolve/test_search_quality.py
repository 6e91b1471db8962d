"""The GPU search-quality benchmark's pipeline on a synthetic landscape (no kernels run): it measures every
policy, transfer and seeding on a few keys, and resumes from its memo."""
import json

from benchmarks.search_quality import POLICIES, GRID, Memo, grid_problem, measure
from torch_kevolve.evolve.evaluation import EvaluationResult, Status
from torch_kevolve.key import DeviceInfo

H100 = DeviceInfo("cuda", "NVIDIA H100 80GB HBM3", "sm_90")


def synthetic(calls):
    def evaluate(candidate):
        calls.append(candidate)
        g = candidate.genome
        fitness = 1.0 + g["BLOCK_N"] / 64 + (g["num_warps"] == 2) + candidate.problem.dim("dim") / 1024
        return EvaluationResult(Status.OK, fitness=fitness, t_ref_us=100.0, t_cand_us=100.0 / fitness)
    return evaluate


def test_measures_policies_transfer_and_seeding_and_resumes(tmp_path):
    problems = [grid_problem(*GRID[i]) for i in (0, 2)]
    calls = []
    result = measure(problems, Memo(tmp_path / "evaluations.json", synthetic(calls)), H100, sample=6, budget=10,
                     out=tmp_path)
    assert len(result["keys"]) == 2
    for key in result["keys"]:
        assert set(key["evaluations_to_95"]) == set(POLICIES)
        assert 0 < key["transfer"]["ratio_to_best"] <= 1.0 and key["transfer"]["distance"] > 0
        assert all(len(run) == 10 for run in key["trajectories"].values())
    first = len(calls)
    again = measure(problems, Memo(tmp_path / "evaluations.json", synthetic(calls)), H100, sample=6, budget=10,
                    out=tmp_path)
    assert len(calls) == first  # every evaluation came from the memo
    assert json.dumps(again["keys"][0]["evaluations_to_95"]) == json.dumps(result["keys"][0]["evaluations_to_95"])
