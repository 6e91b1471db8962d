"""dlrm_small trained one step under backend="kevolve": its two sum tables become one kevolve::embedding_bags
call (its mean and max tables stay F.embedding_bag); unclaimed, the batched op is decomposed back to ATen; in
interpret mode the batched Triton forward and the stacked backward run; loss and gradients match eager."""
import logging

import torch_kevolve.warm as warm_module
from benchmarks.models.dlrm import small_dlrm
from tests.backend.test_interaction_end_to_end import assert_matches_eager, train_step

FORWARD, BACKWARD = "kevolve.embedding_bags.default", "kevolve.embedding_bags_backward.default"


def test_unclaimed_bags_are_decomposed_back_to_aten(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG, logger="torch_kevolve"):
        want, got, model, twin, decisions = train_step({"shipped_cache": False}, tmp_path)
    assert_matches_eager(want, got, model, twin)
    seen = {(d.graph, d.op): d for d in decisions}
    assert not seen["forward", FORWARD].claimed and not seen["backward", BACKWARD].claimed
    assert seen["forward", FORWARD].problem.param("tables") == 2
    assert sum("decomposed back to ATen" in r.getMessage() and "embedding_bags" in r.getMessage()
               for r in caplog.records) == 2


def test_interpret_mode_runs_the_batched_and_stacked_kernels(tmp_path):
    options = {"interpret": True, "families": ["embedding_bags", "embedding_bags_backward"]}
    want, got, model, twin, decisions = train_step(options, tmp_path)
    assert_matches_eager(want, got, model, twin)
    claimed = {(d.graph, d.op): d.implementation for d in decisions if d.claimed}
    assert claimed == {("forward", FORWARD): "embedding_bags_triton",
                       ("backward", BACKWARD): "embedding_bags_backward_triton"}


def test_warm_sees_the_batched_keys(tmp_path):
    model, inputs = small_dlrm("cpu")
    options = {"cache_dir": str(tmp_path), "families": ["embedding_bags", "embedding_bags_backward"]}
    problems = warm_module.model_problems(model, inputs, options)
    assert sorted(p.op for _, p in problems.values()) == [FORWARD, BACKWARD]
    forward = next(p for _, p in problems.values() if p.op == FORWARD)
    assert (forward.param("tables"), forward.dim("rows"), forward.dim("dim")) == (2, 4000, 16)
