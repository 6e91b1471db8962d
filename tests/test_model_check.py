"""model_check: new records the model's step runs slower with are discarded from the user cache (the others kept),
nothing is discarded when the step is not slower, warm(check_model=True) applies the check, and the real step
timer compiles and runs the model's step."""
import torch

import torch_kevolve.model_check as model_check
import torch_kevolve.warm as warm_module
from benchmarks.models.dlrm import build
from tests.test_warm import EMBEDDING_FAMILIES, TINY, records_for_every_key
from torch_kevolve.cache import UserStore


def fake_step_us(store, costs):
    """A step timer whose time is 100 us plus costs[key id] for each record the store holds."""
    def step_us(model, inputs, device, options=None):
        return 100.0 + sum(costs.get(r.key.id, 0.0) for r in store.records())
    return step_us


def stored(tmp_path, count):
    model, inputs = build(TINY, "cpu")
    options = {"cache_dir": str(tmp_path), "shipped_cache": False, "families": EMBEDDING_FAMILIES}
    store = UserStore(tmp_path)
    records = records_for_every_key(model, inputs, options)[:count]
    for record in records:
        store.put(record)
    return model, inputs, store, records


def test_a_record_that_slows_the_step_is_discarded_and_the_others_kept(tmp_path, monkeypatch):
    model, inputs, store, records = stored(tmp_path, 2)
    slow, fast = records
    monkeypatch.setattr(model_check, "step_us", fake_step_us(store, {slow.key.id: 40.0, fast.key.id: -10.0}))
    said = []
    kept = model_check.keep_what_helps(model, inputs, torch.device("cpu"), records, store, say=said.append)
    assert kept == [fast]
    assert [r.key for r in store.records()] == [fast.key]
    assert "130.0 us with the 2 new record(s), 100.0 us without" in said[0]
    assert len(said) == 2 and said[1].startswith("model check: discarded") and "90.0 us without it" in said[1]


def test_nothing_is_discarded_when_the_step_is_no_slower(tmp_path, monkeypatch):
    model, inputs, store, records = stored(tmp_path, 2)
    monkeypatch.setattr(model_check, "step_us", fake_step_us(store, {records[0].key.id: 2.0}))  # within 3%
    said = []
    assert model_check.keep_what_helps(model, inputs, torch.device("cpu"), records, store, say=said.append) == records
    assert {r.key for r in store.records()} == {r.key for r in records} and len(said) == 1


def test_warm_checks_the_model_when_asked(tmp_path, monkeypatch):
    model, inputs = build(TINY, "cpu")
    options = {"cache_dir": str(tmp_path), "shipped_cache": False, "families": EMBEDDING_FAMILIES}
    calls = []

    def check(model, inputs, device, records, store, options, say):
        calls.append(len(records))
        for record in records[1:]:
            store.discard(record.key)
        return records[:1]

    monkeypatch.setattr(warm_module, "keep_what_helps", check)
    records = warm_module.warm(model, inputs, torch.device("cpu"), options, limit=1, say=lambda line: None,
                               verbose=False, check_model=True)
    assert calls and calls[0] >= 2 and len(records) == 1
    assert [r.key for r in UserStore(tmp_path).records()] == [records[0].key]


def test_the_step_timer_runs_the_compiled_step_and_leaves_no_grads(tmp_path):
    model, inputs = build(TINY, "cpu")
    options = {"cache_dir": str(tmp_path), "shipped_cache": False}
    assert model_check.step_us(model, inputs, torch.device("cpu"), options) > 0
    assert all(p.grad is None for p in model.parameters())
