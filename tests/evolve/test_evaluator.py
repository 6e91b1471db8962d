"""The evaluator on CPU: every planted bad candidate scores 0 with its precise status, and the evaluator
(and this test process) survive hangs and crashes; correct candidates are timed or checked."""
import json
import os
import re
import time

import pytest
import torch

from tests.evolve.planted import EXPECTED, LOOPING, SPEC, evaluate_planted, row_sum_problem
from torch_kevolve.evolve.evaluation import Candidate, EvaluationResult, Status
from torch_kevolve.evolve.evaluator import Evaluator, EvaluatorConfig, EvaluatorSetupError
from torch_kevolve.evolve.tune import tune
from torch_kevolve.families import EMBEDDING_BAG

CONFIG = EvaluatorConfig(device="cpu", timeout_s=120.0)
LOOP_TIMEOUT_S = 3.0
# Triton candidates run in the interpreter: a small problem. Timed decompositions: large enough that a
# copy of its bytes takes far longer than a memoised lookup (the suspect timing).
TRITON_PROBLEM = row_sum_problem(8, 64)
TIMED_PROBLEM = row_sum_problem(8192, 2048)


@pytest.fixture(scope="module")
def planted():
    start = time.monotonic()
    table = evaluate_planted(CONFIG, TRITON_PROBLEM, TIMED_PROBLEM, LOOP_TIMEOUT_S)
    print(f"\nplanted candidates judged in {time.monotonic() - start:.1f} s")
    for name, row in table.items():
        r = row["result"]
        print(f"  {name:22} {r.status.value:14} {r.seconds:6.2f} s  fitness {r.fitness:.2f}  {r.error[:90]!r}")
    return table


@pytest.mark.parametrize("name", EXPECTED)
def test_planted_candidate_gets_its_status(planted, name):
    result = planted[name]["result"]
    assert result.status.value == EXPECTED[name], result.error
    if result.status is Status.OK:
        assert result.fitness > 0 and result.t_cand_us > 0 and result.t_ref_us > 0
        assert len(result.trial_errors) == CONFIG.trials
    else:
        assert result.fitness == 0
        assert result.error


def _worker_of(result: EvaluationResult) -> int:
    return int(re.search(r"worker (\d+)", result.error).group(1))


def test_failures_recycle_the_worker_and_successes_reuse_it(planted):
    reused = 0
    for name, row in planted.items():
        status = row["result"].status
        if status in (Status.OK, Status.UNMEASURED):
            assert row["worker_after"] is not None, name
            if row["worker_before"] is not None:
                assert row["worker_after"] == row["worker_before"], name
                reused += 1
        elif status is not Status.REFUSED:
            assert row["worker_after"] not in (None, row["worker_before"]), name  # replaced at once
    assert reused
    crash = planted["out_of_bounds"]["result"]
    assert "SIGSEGV" in crash.error
    with pytest.raises(ProcessLookupError):
        os.kill(_worker_of(crash), 0)


def test_a_hang_is_killed_after_the_timeout(planted):
    result = planted[LOOPING]["result"]
    # seconds also count starting its worker and preparing the problem; returning at all means it was killed
    assert LOOP_TIMEOUT_S <= result.seconds < LOOP_TIMEOUT_S + 60
    with pytest.raises(ProcessLookupError):
        os.kill(_worker_of(result), 0)


def test_unwritten_elements_are_told_from_wrong_ones(planted):
    assert "4 of 8 elements never written" in planted["partial_write"]["result"].error
    assert "trial 1" in planted["result_reuse"]["result"].error  # trial 0 is right: only fresh inputs catch it
    assert "input 0" in planted["mutates_input"]["result"].error


def test_results_are_json(planted):
    for row in planted.values():
        result = row["result"]
        assert EvaluationResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    candidate = Candidate(SPEC, "wrong", {"block": 32}, TRITON_PROBLEM)
    assert Candidate.from_dict(json.loads(json.dumps(candidate.to_dict()))) == candidate


def test_refusal_needs_no_worker():
    with Evaluator(CONFIG) as evaluator:
        result = evaluator.evaluate(Candidate(SPEC, "side_stream", {}, TIMED_PROBLEM))
        assert result.status is Status.REFUSED and "side CUDA stream" in result.error
        assert evaluator.worker_pid is None


def test_a_problem_the_family_cannot_prepare_is_a_setup_error():
    with Evaluator(CONFIG) as evaluator, pytest.raises(EvaluatorSetupError, match="no overload"):
        bad = row_sum_problem(4, 4)
        evaluator.evaluate(Candidate(SPEC, "row_sum_triton", {"block": 32},
                                     type(bad)(bad.family, "aten.mean.dim", bad.params, bad.dims, bad.dtypes)))


def test_tune_stores_the_fittest_decomposition(caplog):
    args = (torch.randn(30, 8), torch.randint(0, 30, (24,)), torch.tensor([0, 5, 9, 9]))
    problem = EMBEDDING_BAG.problem(torch.ops.aten._embedding_bag.default, args, {})
    seen = []
    with Evaluator(CONFIG) as evaluator, caplog.at_level("INFO", logger="torch_kevolve"):
        record, evaluations = tune(EMBEDDING_BAG, problem, evaluator, progress=lambda c, r: seen.append(c))
    prepared = [m for m in caplog.messages if m.startswith("kevolve: prepared aten._embedding_bag.default in ")]
    assert len(prepared) == 1 and f"({CONFIG.trials} trials;" in prepared[0]  # once per problem, with its time
    assert [c for c, _ in evaluations] == seen
    assert {c.implementation for c in seen} == {"embedding_bag_decomposition"}  # Triton is not timeable on CPU
    assert all(r.status is Status.OK for _, r in evaluations)
    assert record.fitness == max(r.fitness for _, r in evaluations) > 0
    assert record.stats["statuses"] == {"ok": len(evaluations)}


def test_a_limited_tune_tries_every_algorithm_before_other_tiles():
    from torch_kevolve.evolve.tune import candidates
    from torch_kevolve.families.map_id.family import MAP_ID_FAMILY
    from torch_kevolve.families.map_id.implementations import TRITON

    ids, vocabulary = torch.zeros(4096, dtype=torch.int64), torch.arange(100_000)
    problem = MAP_ID_FAMILY.problem(torch.ops.kevolve.map_id.default, (ids, vocabulary, vocabulary, 100_000), {})
    picked = candidates(TRITON, problem, 4)
    assert picked[0] == TRITON.default_genome(problem)
    assert {g["SEARCH"] for g in picked} == {"radix", "binary", "kary", "coarse"}
    assert picked == candidates(TRITON, problem, 4)  # seeded by the problem
    assert len({repr(g) for g in candidates(TRITON, problem, 40)}) == 40
