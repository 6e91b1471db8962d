"""The `kevolve` command line: cache list/show/purge/export and explain."""
import re

import torch

from torch_kevolve.cache import KernelRecord, UserStore, read_records
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
    assert main(["cache", "--cache-dir", str(tmp_path), "purge"]) == 2
    assert main(["cache", "--cache-dir", str(tmp_path), "purge", "--family", "embedding_bag"]) == 0
    assert UserStore(tmp_path).records() == []
    assert main(["cache", "--cache-dir", str(tmp_path), "purge", "--all"]) == 0
    assert not (tmp_path / "kernels.sqlite").exists()


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
                 "--options", '{"interpret": true}']) == 0
    out = capsys.readouterr().out
    claimed = int(re.search(r"(\d+) claimed by kevolve", out).group(1))
    assert claimed >= 8 and "CLAIMED  forward" in out and "CLAIMED  backward" in out  # 8 embedding-bag nodes
