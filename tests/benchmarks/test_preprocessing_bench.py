"""The preprocessing microbenchmark: its CPU skip, its exactness check, and one run of its measuring
path on CPU (tuning the decompositions of MapId's bucketize key into a temporary cache)."""
import json

import torch

from benchmarks import preprocessing
from torch_kevolve.key import DeviceInfo


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
    assert r["kernel_us"] is None  # GPU kernel times on CUDA only
    assert [t["implementation"] for t in r["tuned"]] == ["bucketize_decomposition"]
    assert "aten.bucketize.Tensor" in r["tuned"][0]["key"]


def test_every_run_is_kept_and_a_lost_context_stops_the_rest(tmp_path, monkeypatch):
    """A failing run is recorded with its error and the JSON holds every row so far; after a failure that lost
    the CUDA context the remaining runs are listed as skipped, not run."""
    ran = []

    def fake_bench(name, batch, device, options, limit):
        ran.append((name, batch))
        if name == "mbdt":
            raise RuntimeError("CUDA error: device-side assert triggered")
        return {"module": name, "batch": batch, "times_us": {c: 2.0 for c in ("eager", "inductor", "kevolve")},
                "kernel_us": {c: 1.0 for c in ("eager", "inductor", "kevolve")}, "correct": {"kevolve": True},
                "claimed": [], "speedup_vs_eager": 1.0, "speedup_vs_inductor": 1.0}

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(preprocessing, "bench", fake_bench)
    monkeypatch.setattr(preprocessing, "context_lost", lambda device: True)
    monkeypatch.setattr(DeviceInfo, "of", staticmethod(lambda device: DeviceInfo("cuda", "test GPU", "sm_90")))
    out = tmp_path / "prep.json"
    code = preprocessing.main([str(out), "--modules", "bucketize,mbdt,map_id", "--batches", "2048,8192"])
    saved = json.loads(out.read_text())
    assert code == 1 and ran == [("bucketize", 2048), ("mbdt", 2048)]
    assert [r["module"] for r in saved["results"]] == ["bucketize"]
    assert saved["failed"][0]["module"] == "mbdt" and "device-side assert" in saved["failed"][0]["error"]
    assert [(s["module"], s["batch"]) for s in saved["skipped"]] == [("map_id", 2048), ("bucketize", 8192),
                                                                     ("mbdt", 8192), ("map_id", 8192)]
    assert all("CUDA context was lost" in s["why"] for s in saved["skipped"])
