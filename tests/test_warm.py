"""kevolve warm skips the keys that already have an answer (a user-cache record or a usable shipped kernel), and
evolves the pattern families' keys."""
import dataclasses

import torch

import torch_kevolve.warm as warm_module
from benchmarks.models.dlrm import DLRMConfig, build
from torch_kevolve.cache import Dispatcher, KernelRecord, ShippedStore, UserStore, export_records
from torch_kevolve.families import FAMILIES
from torch_kevolve.families.base import Abstraction
from torch_kevolve.key import DeviceInfo, OpKey

EMBEDDING_FAMILIES = ["embedding_bag", "embedding_bag_backward"]
TINY = DLRMConfig(num_tables=2, rows=30, dim=8, batch=4, pooling=3, dense_features=5,
                  bottom=(8, 8), top=(8, 1), modes=("sum", "mean"))


def records_for_every_key(model, inputs, options):
    """A decomposition record (stand-in timings, real sources) for every problem the model poses."""
    families = {f.name: f for f in FAMILIES}
    records = []
    for family_name, problem in warm_module.model_problems(model, inputs, options).values():
        family = families[family_name]
        impl = next(i for i in family.implementations if i.abstraction is Abstraction.DECOMPOSITION)
        records.append(KernelRecord.measured(
            key=OpKey.of(problem, DeviceInfo.of("cpu")), family=family, implementation=impl,
            genome=impl.genomes(problem)[0], t_ref_us=20.0, t_cand_us=10.0, achieved_gbps=None,
            stats={"method": "test"}))
    return records


def warm_quietly(model, inputs, options):
    said = []
    records = warm_module.warm(model, inputs, torch.device("cpu"), options, limit=1, say=said.append, verbose=False)
    return records, said


def test_keys_held_by_the_user_cache_are_not_tuned_again(tmp_path):
    model, inputs = build(TINY, "cpu")
    options = {"cache_dir": str(tmp_path), "shipped_cache": False, "families": EMBEDDING_FAMILIES}
    store = UserStore(tmp_path)
    held = records_for_every_key(model, inputs, options)
    for record in held:
        store.put(record)
    records, said = warm_quietly(model, inputs, options)
    assert records == []
    assert len(said) == len(held) and all(line.startswith("already tuned") for line in said)


def test_stale_user_records_are_tuned_again(tmp_path):
    """A user record measured with an older version of its family is no answer: warm tunes its key again and
    replaces it."""
    model, inputs = build(TINY, "cpu")
    options = {"cache_dir": str(tmp_path), "shipped_cache": False, "families": EMBEDDING_FAMILIES}
    store = UserStore(tmp_path)
    held = records_for_every_key(model, inputs, options)
    store.put(dataclasses.replace(held[0], family_version="0"))
    for record in held[1:]:
        store.put(record)
    records, said = warm_quietly(model, inputs, options)
    assert [r.key.id for r in records] == [held[0].key.id]
    assert sum(line.startswith("already tuned") for line in said) == len(held) - 1
    assert any(line.startswith("discarded the user record") and "version" in line for line in said)
    assert store.get(held[0].key).family_version == held[0].family_version


def test_a_retune_replaces_a_stale_record_however_fit(tmp_path):
    """With retune, a stale user record (here: fitness 1000, measured by an older family version) is discarded
    rather than kept as the better one: the key's new record is stored."""
    model, inputs = build(TINY, "cpu")
    options = {"cache_dir": str(tmp_path), "shipped_cache": False, "families": EMBEDDING_FAMILIES}
    store = UserStore(tmp_path)
    held = records_for_every_key(model, inputs, options)
    store.put(dataclasses.replace(held[0], family_version="0", fitness=1000.0))
    said = []
    records = warm_module.warm(model, inputs, torch.device("cpu"), options, limit=1, retune=True,
                               say=said.append, verbose=False)
    assert held[0].key.id in {r.key.id for r in records}
    assert any(line.startswith("discarded the user record") for line in said)
    kept = store.get(held[0].key)
    assert kept.family_version == held[0].family_version and kept.fitness < 1000


def test_a_retune_replaces_a_sound_record_measured_against_another_reference(tmp_path):
    """A retune measures again: its new record replaces a sound user record even when the stored fitness (here
    1000, as if its reference had been measured far slower then) is higher than what is measured now."""
    model, inputs = build(TINY, "cpu")
    options = {"cache_dir": str(tmp_path), "shipped_cache": False, "families": EMBEDDING_FAMILIES}
    store = UserStore(tmp_path)
    held = records_for_every_key(model, inputs, options)
    store.put(dataclasses.replace(held[0], fitness=1000.0))
    records = warm_module.warm(model, inputs, torch.device("cpu"), options, limit=1, retune=True,
                               say=lambda line: None, verbose=False)
    new = next(r for r in records if r.key.id == held[0].key.id)
    assert store.get(held[0].key) == new and new.fitness < 1000


def test_keys_with_a_usable_shipped_kernel_are_not_tuned_again(tmp_path, monkeypatch):
    model, inputs = build(TINY, "cpu")
    user_dir, shipped_dir = tmp_path / "user", tmp_path / "shipped"
    options = {"cache_dir": str(user_dir), "families": EMBEDDING_FAMILIES}
    held = records_for_every_key(model, inputs, options)
    export_records(held, shipped_dir / "cpu.json")
    monkeypatch.setattr(warm_module, "make_dispatcher",
                        lambda opts: Dispatcher(UserStore(opts.cache_dir), ShippedStore(shipped_dir)))
    records, said = warm_quietly(model, inputs, options)
    assert records == []
    assert len(said) == len(held) and all(line.startswith("already tuned") for line in said)
    assert UserStore(user_dir).records() == []


def test_warm_evolves_the_pattern_families_keys(tmp_path):
    """An evolving warm of a tiny DLRM's batched embedding bags and interaction on CPU: every key gets a record
    (the batched forward's decomposition has a one-genome space: its search ends as exhausted)."""
    from torch_kevolve.evolve.search import SearchConfig
    from torch_kevolve.evolve.termination import Termination

    model, inputs = build(dataclasses.replace(TINY, modes=("sum",)), "cpu")
    options = {"cache_dir": str(tmp_path), "shipped_cache": False,
               "families": ["embedding_bags", "embedding_bags_backward", "interaction"]}
    search = SearchConfig(policy="greedy", termination=Termination(max_evaluations=2, roofline=None))
    said = []
    records = warm_module.warm(model, inputs, torch.device("cpu"), options, say=said.append, verbose=False,
                               search=search)
    assert sorted(r.key.op for r in records) == sorted(p.op for _, p in warm_module.model_problems(
        model, inputs, options).values())
    assert {r.key.op for r in records} >= {"kevolve.embedding_bags.default", "kevolve.embedding_bags_backward.default"}


def test_one_keys_failed_search_does_not_stop_the_others(tmp_path, monkeypatch):
    """A search that raises (here: the first key's) is reported and leaves its key without a record; the other
    keys are still evolved and stored."""
    from torch_kevolve.evolve.search import SearchConfig
    from torch_kevolve.evolve.termination import Termination

    model, inputs = build(dataclasses.replace(TINY, modes=("sum",)), "cpu")
    options = {"cache_dir": str(tmp_path), "shipped_cache": False,
               "families": ["embedding_bags", "embedding_bags_backward", "interaction"]}
    evolve_key, calls = warm_module.evolve_key, []

    def first_one_fails(family, *args, **kwargs):
        calls.append(family.name)
        if len(calls) == 1:
            raise KeyError("operands")
        return evolve_key(family, *args, **kwargs)

    monkeypatch.setattr(warm_module, "evolve_key", first_one_fails)
    said = []
    search = SearchConfig(policy="greedy", termination=Termination(max_evaluations=1, roofline=None))
    records = warm_module.warm(model, inputs, torch.device("cpu"), options, say=said.append, verbose=False,
                               search=search, workers=1)
    keys = warm_module.model_problems(model, inputs, options)
    assert len(calls) == len(keys) > 1 and len(records) == len(keys) - 1
    assert any("failed (KeyError: 'operands'); nothing stored" in line for line in said)
    assert "search failed: KeyError" in said[-1]


def test_the_stored_record_is_called_a_win_a_tie_or_a_loss(tmp_path):
    model, inputs = build(TINY, "cpu")
    record = records_for_every_key(model, inputs, {"families": EMBEDDING_FAMILIES})[0]
    store, said = UserStore(tmp_path), []
    for fitness in (2.0, 1.02, 0.5):
        key = dataclasses.replace(record.key, shape=record.key.shape + (("copy", int(fitness * 100)),))
        warm_module.store_record(dataclasses.replace(record, key=key, fitness=fitness), store, said.append)
    assert ["(kevolve faster" in said[0], "(a tie with Inductor" in said[1], "(Inductor faster" in said[2]] == [True] * 3
