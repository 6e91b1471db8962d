"""dlrm_small trained one step under backend="kevolve": the dot interaction becomes kevolve::pairwise_dots;
with default options (empty cache) it is decomposed back to ATen, in interpret mode our interaction kernels
run forward and backward; loss and gradients match eager either way. `kevolve warm` sees its keys."""
import copy
import logging

import pytest
import torch

import torch_kevolve.warm as warm_module
from benchmarks.models.dlrm import small_dlrm
from torch_kevolve.backend.decisions import collect_decisions

FORWARD, BACKWARD = "kevolve.pairwise_dots.default", "kevolve.pairwise_dots_backward.default"


def train_step(options, tmp_path, factory=small_dlrm):
    """(eager loss, compiled loss, eager model, compiled model, decisions) of one forward and backward of the
    model `factory` makes."""
    torch._dynamo.reset()
    model, inputs = factory("cpu")
    twin = copy.deepcopy(model)
    want = model(*inputs)
    want.backward()
    compiled = torch.compile(twin, backend="kevolve", options={"cache_dir": str(tmp_path), **options})
    with collect_decisions() as decisions:
        got = compiled(*inputs)
        got.backward()
    torch._dynamo.reset()
    return want, got, model, twin, decisions


def assert_matches_eager(want, got, model, twin):
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for (name, w), g in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(g.grad, w.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_unclaimed_interaction_is_decomposed_back_to_aten(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG, logger="torch_kevolve"):
        want, got, model, twin, decisions = train_step({"shipped_cache": False}, tmp_path)
    assert_matches_eager(want, got, model, twin)
    seen = {(d.graph, d.op): d for d in decisions}
    assert not seen["forward", FORWARD].claimed and not seen["backward", BACKWARD].claimed
    assert seen["forward", FORWARD].family == "interaction" and seen["forward", FORWARD].problem is not None
    assert ("forward", "aten.bmm.default") in seen and ("backward", "aten.index_put.default") in seen
    assert sum("decomposed back to ATen" in r.getMessage() and "pairwise_dots" in r.getMessage()
               for r in caplog.records) == 2


def test_interpret_mode_runs_our_interaction_kernels(tmp_path):
    want, got, model, twin, decisions = train_step({"interpret": True, "families": ["interaction"]}, tmp_path)
    assert_matches_eager(want, got, model, twin)
    claimed = {(d.graph, d.op): d.implementation for d in decisions if d.claimed}
    assert claimed == {("forward", FORWARD): "interaction_triton", ("backward", BACKWARD): "interaction_triton"}
    assert not any(d.op == "aten.bmm.default" for d in decisions)


def test_patterns_off_leaves_the_bmm_and_gather(tmp_path):
    want, got, model, twin, decisions = train_step({"patterns": False, "families": ["interaction"]}, tmp_path)
    assert_matches_eager(want, got, model, twin)
    ops = {d.op for d in decisions}
    assert FORWARD not in ops and "aten.bmm.default" in ops


def test_warm_sees_the_interaction_keys(tmp_path):
    model, inputs = small_dlrm("cpu")
    problems = warm_module.model_problems(model, inputs, {"cache_dir": str(tmp_path), "families": ["interaction"]})
    assert sorted(p.op for _, p in problems.values()) == [FORWARD, BACKWARD]
    forward = next(p for _, p in problems.values() if p.op == FORWARD)
    assert (forward.dim("rows"), forward.dim("pairs"), forward.dim("dim")) == (5, 10, 16)


@pytest.mark.parametrize("option", [1, "yes"])
def test_patterns_option_must_be_a_bool(option, tmp_path):
    from torch_kevolve.backend.options import KevolveOptions
    with pytest.raises(ValueError, match="'patterns' must be a bool"):
        KevolveOptions.from_user({"patterns": option})
