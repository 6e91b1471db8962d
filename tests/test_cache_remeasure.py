"""`kevolve cache remeasure`: a record made stale by a source change is measured again with this checkout's source
and stored fresh, under its own key; a record of another device is skipped; one whose implementation is gone fails
the command; every shipped key is its representative problem's key again."""
import dataclasses
import hashlib

import torch

from torch_kevolve.cache import Dispatcher, KernelRecord, UserStore, export_records, read_records
from torch_kevolve.cli import main
from torch_kevolve.families import EMBEDDING_BAG
from torch_kevolve.key import DeviceInfo, OpKey


def _stale_record() -> KernelRecord:
    """A decomposition record of a small bag on this CPU, measured (so it says) with an older source; its exact
    `dim` 12 is no power of two, unlike the bucketed dims."""
    args = (torch.randn(30, 12), torch.randint(0, 30, (20,)), torch.tensor([0, 5, 9]))
    problem = EMBEDDING_BAG.problem(torch.ops.aten._embedding_bag.default, args, {})
    impl = EMBEDDING_BAG.implementation("embedding_bag_decomposition")
    record = KernelRecord.measured(OpKey.of(problem, DeviceInfo.of("cpu")), EMBEDDING_BAG, impl,
                                   impl.genomes(problem)[0], t_ref_us=20.0, t_cand_us=10.0)
    older = record.source + "\n# the kernel as it was\n"
    return dataclasses.replace(record, source=older, source_sha256=hashlib.sha256(older.encode()).hexdigest())


def test_a_stale_record_is_measured_again_with_this_source(tmp_path, capsys):
    stale = _stale_record()
    dispatcher = Dispatcher(None, None)
    assert dispatcher.check(stale)[0] == "stale: kernel source changed since it was measured"
    elsewhere = dataclasses.replace(stale, key=dataclasses.replace(stale.key, device="NVIDIA H100 80GB HBM3",
                                                                   capability="sm_90"))
    shipped = tmp_path / "shipped.json"
    export_records([stale, elsewhere], shipped)
    again = tmp_path / "again.json"
    assert main(["cache", "--cache-dir", str(tmp_path), "remeasure", str(shipped), "--device", "cpu",
                 "--out", str(again)]) == 0
    out = capsys.readouterr().out
    assert "stored 1 records measured again (and wrote them to" in out and "0 failed" in out
    assert "skipped" in out and "fitness 2.00 ->" in out
    [fresh] = UserStore(tmp_path).records()
    assert read_records(again) == [fresh]
    assert fresh.key == stale.key and fresh.source != stale.source and fresh.hash_ok()
    assert dict(fresh.key.shape)["dim"] == 12
    assert dispatcher.check(fresh)[1] is None  # current: it runs, or Inductor measured faster or tied
    assert fresh.t_cand_us > 0 and fresh.t_ref_us > 0 and fresh.fitness == fresh.t_ref_us / fresh.t_cand_us
    assert fresh.stats["method"] == "remeasured" and fresh.stats["previous"]["fitness"] == 2.0


def test_a_record_whose_implementation_is_gone_fails(tmp_path, capsys):
    gone = dataclasses.replace(_stale_record(), implementation="embedding_bag_retired")
    shipped = tmp_path / "shipped.json"
    export_records([gone], shipped)
    assert main(["cache", "--cache-dir", str(tmp_path), "remeasure", str(shipped), "--device", "cpu",
                 "--keys", "_embedding_bag"]) == 1
    out = capsys.readouterr().out
    assert "failed" in out and "embedding_bag_retired" in out and UserStore(tmp_path).records() == []


def test_every_shipped_key_is_its_problems_key_again():
    """remeasure and import measure `problem_of(key)` and store the record under that problem's key: for every
    shipped record it must be the record's own key (its exact dims kept, the bucketed ones a bucket already)."""
    from torch_kevolve.cache import ShippedStore
    from torch_kevolve.cache_import import problem_of

    for record in ShippedStore().records():
        key = record.key
        assert OpKey.of(problem_of(key), DeviceInfo("cuda", key.device, key.capability)) == key, key.short()
