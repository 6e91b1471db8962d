"""A DLRM-style model trained under backend="kevolve" on CPU matches eager, with and without kernels."""
import copy
import logging

import pytest
import torch

from benchmarks.models.dlrm import DLRMConfig, build
from torch_kevolve.backend.decisions import collect_decisions
from torch_kevolve.cache import KernelRecord, UserStore
from torch_kevolve.families import FAMILIES
from torch_kevolve.families.base import Abstraction
from torch_kevolve.key import DeviceInfo, OpKey

TINY = DLRMConfig(num_tables=3, rows=40, dim=8, batch=6, pooling=3, dense_features=5,
                  bottom=(16, 8), top=(16, 1), modes=("sum", "mean", "max"))
EMBEDDING_OPS = {"aten._embedding_bag.default", "aten._embedding_bag_backward.default",
                 "aten._embedding_bag_dense_backward.default"}


def train(model, inputs, steps=2):
    """A few SGD steps; returns the losses and the final gradients."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = model(*inputs)
        loss.backward()
        losses.append(loss.detach())
        opt.step()
    return torch.stack(losses), [p.grad.clone() for p in model.parameters()]


def run_against_eager(options, config=TINY):
    torch._dynamo.reset()
    model, inputs = build(config, "cpu")
    twin = copy.deepcopy(model)
    want_losses, want_grads = train(model, inputs)
    compiled = torch.compile(twin, backend="kevolve", options=options)
    with collect_decisions() as decisions:
        got_losses, got_grads = train(compiled, inputs)
    torch.testing.assert_close(got_losses, want_losses, rtol=1e-5, atol=1e-6)
    for g, w in zip(got_grads, want_grads):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)
    return decisions


def test_interpret_mode_really_rewrites_forward_and_backward(tmp_path):
    decisions = run_against_eager({"interpret": True, "cache_dir": str(tmp_path)})
    claimed = [d for d in decisions if d.claimed]
    assert {d.graph for d in claimed} == {"forward", "backward"}
    assert sum(d.op == "aten._embedding_bag.default" for d in claimed) == TINY.num_tables
    assert EMBEDDING_OPS & {d.op for d in claimed if d.graph == "backward"}
    assert all(d.op in {str(o) for f in FAMILIES for o in f.overloads} for d in claimed)
    assert {d.graph for d in claimed if d.family == "pointwise"} == {"forward", "backward"}


def test_empty_cache_leaves_everything_to_inductor(tmp_path):
    decisions = run_against_eager({"cache_dir": str(tmp_path), "shipped_cache": False})
    assert not any(d.claimed for d in decisions)
    ours = [d for d in decisions if d.family]
    assert ours and all("no" in d.reason.lower() for d in ours)


def _decomposition_records(tmp_path, fitness):
    """Records for every problem of the model whose family has a decomposition, pointing at it.

    The timings are stand-ins (the test is about dispatch, not speed); sources and versions are real.
    """
    from torch_kevolve.warm import model_problems

    model, inputs = build(TINY, "cpu")
    store = UserStore(tmp_path)
    families = {f.name: f for f in FAMILIES}
    for family_name, problem in model_problems(model, inputs, {"cache_dir": str(tmp_path)}).values():
        family = families[family_name]
        impl = next((i for i in family.implementations if i.abstraction is Abstraction.DECOMPOSITION), None)
        genome = next(iter(impl.genomes(problem)), None) if impl else None
        if genome is None:
            continue
        store.put(KernelRecord.measured(key=OpKey.of(problem, DeviceInfo.of("cpu")), family=family,
                                      implementation=impl, genome=genome, t_ref_us=10.0 * fitness,
                                      t_cand_us=10.0, achieved_gbps=None, stats={"method": "test"}))
    return store


def test_cached_winners_are_swapped_in(tmp_path):
    _decomposition_records(tmp_path, fitness=2.0)
    decisions = run_against_eager({"cache_dir": str(tmp_path), "shipped_cache": False})
    claimed = [d for d in decisions if d.claimed]
    assert claimed and all("decomposition" in d.implementation for d in claimed)


def test_inductor_wins_records_are_not_swapped_in(tmp_path):
    _decomposition_records(tmp_path, fitness=0.5)
    decisions = run_against_eager({"cache_dir": str(tmp_path), "shipped_cache": False})
    assert not any(d.claimed for d in decisions)
    assert any("Inductor" in d.reason for d in decisions if d.family)


def test_corrupt_cache_still_compiles_through_inductor(tmp_path, caplog):
    (tmp_path / "kernels.sqlite").write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING, logger="torch_kevolve"):
        decisions = run_against_eager({"cache_dir": str(tmp_path), "shipped_cache": False})
    assert not any(d.claimed for d in decisions)
    assert "kernels.sqlite" in caplog.text


def test_unwritable_cache_dir_is_reported_not_fatal(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING, logger="torch_kevolve"):
        run_against_eager({"cache_dir": str(blocker / "cache"), "shipped_cache": False})
    assert "cache" in caplog.text


def test_failing_kernel_falls_back_with_a_log_line(tmp_path, caplog):
    broken = [_break(f) for f in FAMILIES]
    try:
        with caplog.at_level(logging.WARNING, logger="torch_kevolve"):
            decisions = run_against_eager({"interpret": True, "cache_dir": str(tmp_path)})
        assert not any(d.claimed for d in decisions)
        assert "kernel failed" in " ".join(d.reason for d in decisions) and "left to Inductor" in caplog.text
        with pytest.raises(Exception, match="deliberately broken"):
            run_against_eager({"interpret": True, "fallback": False, "cache_dir": str(tmp_path)})
    finally:
        for family, impls in zip(FAMILIES, broken):
            family.implementations = impls


def _broken_build(problem, genome):
    raise RuntimeError("deliberately broken kernel")


def _break(family):
    """Swap every implementation's build for one that raises; return the originals."""
    import dataclasses

    original = family.implementations
    family.implementations = tuple(dataclasses.replace(i, build=_broken_build) for i in original)
    return original


def test_a_family_bug_falls_back_to_inductor(tmp_path, caplog, monkeypatch):
    def broken_problem(*args, **kwargs):
        raise RuntimeError("deliberate family bug")

    for family in FAMILIES:
        monkeypatch.setattr(family, "problem", broken_problem)
    with caplog.at_level(logging.WARNING, logger="torch_kevolve"):
        decisions = run_against_eager({"interpret": True, "cache_dir": str(tmp_path)})
    assert not any(d.claimed for d in decisions)
    assert "deliberate family bug" in caplog.text
