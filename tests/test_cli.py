"""The `kevolve` command line: cache list/show/purge/export/ship, explain and coverage (remeasure:
test_cache_remeasure.py)."""
import dataclasses
import json

import torch

from torch_kevolve.cache import (Dispatcher, KernelRecord, UserStore, export_records, read_records, torch_version,
                                 triton_version)
from torch_kevolve.cli import main
from torch_kevolve.families import EMBEDDING_BAG
from torch_kevolve.key import DeviceInfo, OpKey


def _record():
    args = (torch.randn(30, 8), torch.randint(0, 30, (20,)), torch.tensor([0, 5, 9]))
    problem = EMBEDDING_BAG.problem(torch.ops.aten._embedding_bag.default, args, {})
    impl = EMBEDDING_BAG.implementation("embedding_bag_decomposition")
    return KernelRecord.measured(OpKey.of(problem, DeviceInfo.of("cpu")), EMBEDDING_BAG, impl,
                                 impl.genomes(problem)[0], t_ref_us=20.0, t_cand_us=10.0)


def test_cache_list_show_export_purge(tmp_path, capsys):
    record = _record()
    UserStore(tmp_path).put(record)
    assert main(["cache", "--cache-dir", str(tmp_path), "list"]) == 0
    assert record.key.digest in capsys.readouterr().out
    assert main(["cache", "--cache-dir", str(tmp_path), "show", record.key.digest[:8]]) == 0
    assert '"embedding_bag_decomposition"' in capsys.readouterr().out
    assert main(["cache", "--cache-dir", str(tmp_path), "show", "ffffffffffff"]) == 1
    assert main(["cache", "--cache-dir", str(tmp_path), "export", str(tmp_path / "out.json")]) == 0
    assert [r.key for r in read_records(tmp_path / "out.json")] == [record.key]
    tie = dataclasses.replace(record, key=dataclasses.replace(record.key, shape=(("bags", 32),)), fitness=1.02)
    UserStore(tmp_path).put(tie)
    assert main(["cache", "--cache-dir", str(tmp_path), "export", str(tmp_path / "out.json")]) == 0
    assert [r.key for r in read_records(tmp_path / "out.json")] == [record.key]  # a tie is no winner
    assert main(["cache", "--cache-dir", str(tmp_path), "purge"]) == 2
    assert main(["cache", "--cache-dir", str(tmp_path), "purge", "--family", "embedding_bag"]) == 0
    assert UserStore(tmp_path).records() == []
    assert main(["cache", "--cache-dir", str(tmp_path), "purge", "--all"]) == 0
    assert not (tmp_path / "kernels.sqlite").exists()


def test_cache_ship_merges_checked_winners(tmp_path, capsys):
    """A key's new winner replaces the shipped file's record (measured under other torch and triton versions, as
    on the GPU machine), a record Inductor beat or tied is left out, and a tampered record stops the whole merge."""
    record = dataclasses.replace(_record(), torch_version="2.11.0+cu130", triton_version="3.6.0")
    older = dataclasses.replace(record, t_cand_us=16.0, fitness=1.25)
    loser = dataclasses.replace(record, key=dataclasses.replace(record.key, shape=(("bags", 16),)), fitness=0.5)
    shipped, new, bad = tmp_path / "shipped.json", tmp_path / "new.json", tmp_path / "bad.json"
    export_records([older], shipped)
    tie = dataclasses.replace(loser, key=dataclasses.replace(record.key, shape=(("bags", 32),)), fitness=1.02)
    export_records([record, loser, tie], new)
    assert main(["cache", "ship", str(new), "--into", str(shipped)]) == 0
    out = capsys.readouterr().out
    assert "replaced" in out and "was embedding_bag_decomposition at 1.25" in out
    assert "left out (Inductor faster, fitness 0.500)" in out and "left out (a tie with Inductor, fitness 1.020)" in out
    assert [(r.key, r.fitness) for r in read_records(shipped)] == [(record.key, 2.0)]
    export_records([dataclasses.replace(record, source=record.source + "#")], bad)
    before = shipped.read_bytes()
    assert main(["cache", "ship", str(new), str(bad), "--into", str(shipped)]) == 1
    assert "nothing written" in capsys.readouterr().err and shipped.read_bytes() == before


def test_cache_ship_replace_lets_a_remeasure_demote_a_winner(tmp_path, capsys):
    """With --replace, a record measured again replaces its key's whatever its fitness: a former winner now tied
    is shipped as measured, and the dispatcher leaves its key to Inductor."""
    record = dataclasses.replace(_record(), torch_version="2.11.0+cu130", triton_version="3.6.0")
    tie = dataclasses.replace(record, t_ref_us=10.1, fitness=1.01)
    shipped, again = tmp_path / "shipped.json", tmp_path / "again.json"
    export_records([record], shipped)
    export_records([tie], again)
    assert main(["cache", "ship", str(again), "--into", str(shipped)]) == 0
    assert "left out (a tie with Inductor" in capsys.readouterr().out and read_records(shipped) == [record]
    assert main(["cache", "ship", str(again), "--into", str(shipped), "--replace"]) == 0
    assert "replaced" in capsys.readouterr().out and read_records(shipped) == [tie]
    here = dataclasses.replace(tie, torch_version=torch_version(), triton_version=triton_version())
    assert "a tie with Inductor" in Dispatcher(None, None).check(here)[0]


def test_corrupt_cache_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "kernels.sqlite").write_bytes(b"garbage" * 500)
    assert main(["cache", "--cache-dir", str(tmp_path), "list"]) == 1
    assert "kernels.sqlite" in capsys.readouterr().err


def test_explain_names_claimed_and_left_nodes(tmp_path, capsys):
    assert main(["explain", "benchmarks.models.dlrm:small_dlrm", "--device", "cpu", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0 claimed by kevolve" in out and "INDUCTOR" in out and "no cached kernel" in out
    assert "aten.addmm.default" in out
    assert main(["explain", "benchmarks.models.dlrm:small_dlrm", "--device", "cpu", "--cache-dir", str(tmp_path),
                 "--options", '{"interpret": true, "families": ["embedding_bag", "embedding_bag_backward"]}']) == 0
    out = capsys.readouterr().out
    assert "8 claimed by kevolve" in out and "CLAIMED  forward" in out and "CLAIMED  backward" in out


def test_coverage_markdown_and_json(capsys):
    assert main(["coverage", "--family", "embedding_bag", "--limit", "1"]) == 0
    table = capsys.readouterr().out
    assert "| `aten._embedding_bag.default` | embedding_bag |" in table
    assert "2 of 2 claimed overloads proven" in table
    assert main(["coverage", "--family", "embedding_bag", "--limit", "1", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["proven_by_family"] == {"embedding_bag": 2}
    assert main(["coverage", "--family", "nonsense"]) == 2
