"""The preprocessing microbenchmark: its CPU skip, its exactness check, and one run of its measuring
path on CPU (tuning the decompositions of MapId's bucketize key into a temporary cache)."""
import torch

from benchmarks import preprocessing


def test_skips_cleanly_without_cuda(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert preprocessing.main([str(tmp_path / "out.json")]) == 0
    assert "needs a CUDA device" in capsys.readouterr().out and not (tmp_path / "out.json").exists()


def test_same_demands_exact_values_and_dtypes():
    a = torch.tensor([1, 2, 3])
    assert preprocessing.same((a, a.clone()), (a, a))
    assert not preprocessing.same(a, a.int())
    assert not preprocessing.same((a, a), (a, a + 1))


def test_bench_measures_a_tuned_module_on_cpu(tmp_path):
    options = {"cache_dir": str(tmp_path), "families": ["bucketize"], "shipped_cache": False}
    r = preprocessing.bench("map_id", 32, torch.device("cpu"), options, limit=1)
    assert r["correct"] == {"inductor": True, "kevolve": True}
    assert set(r["times_us"]) == {"eager", "inductor", "kevolve"} and all(t > 0 for t in r["times_us"].values())
    assert [t["implementation"] for t in r["tuned"]] == ["bucketize_decomposition"]
    assert "aten.bucketize.Tensor" in r["tuned"][0]["key"]
