"""The preprocessing microbenchmark: its CPU skip, its exactness check, one run of its measuring path on CPU
(tuning the decompositions of MapId's bucketize key into a temporary cache), the same with Inductor failing, a child's run-keeping and the parent's
isolation of a child that dies."""
import json
import sys

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


def test_kernel_totals_sum_each_contenders_kernels():
    launched = {"eager": {"gather": (2.0, 1.0), "copy": (1.5, 2.0)}, "inductor": None}
    assert preprocessing.kernel_totals(launched) == {"eager": 3.5, "inductor": None}
    assert preprocessing.kernel_totals(None) is None


def test_bench_measures_a_tuned_module_on_cpu(tmp_path):
    options = {"cache_dir": str(tmp_path), "families": ["bucketize"], "shipped_cache": False}
    r = preprocessing.bench("map_id", 32, torch.device("cpu"), options, limit=1)
    assert r["correct"] == {"inductor": True, "kevolve": True}
    assert set(r["times_us"]) == {"eager", "inductor", "kevolve"} and all(t > 0 for t in r["times_us"].values())
    assert r["kernel_us"] is None and r["kernels"] is None  # GPU kernel times on CUDA only
    assert [t["implementation"] for t in r["tuned"]] == ["bucketize_decomposition"]
    assert "aten.bucketize.Tensor" in r["tuned"][0]["key"]


def test_an_inductor_failure_keeps_kevolves_row(tmp_path, monkeypatch, capsys):
    """Inductor runs last: where its compile fails, the row keeps eager's and kevolve's times and checks, with
    Inductor's error and None for its times."""
    compile_module = torch.compile

    def failing_inductor(module, **kwargs):
        if "backend" not in kwargs:
            raise RuntimeError("CUDA error: device-side assert triggered")
        return compile_module(module, **kwargs)

    monkeypatch.setattr(preprocessing.torch, "compile", failing_inductor)
    options = {"cache_dir": str(tmp_path), "families": ["bucketize"], "shipped_cache": False}
    r = preprocessing.bench("map_id", 32, torch.device("cpu"), options, limit=1)
    assert r["correct"] == {"kevolve": True} and "device-side assert" in r["inductor_error"]
    assert r["times_us"]["inductor"] is None and r["speedup_vs_inductor"] is None and r["times_us"]["kevolve"] > 0
    preprocessing.print_result(dict(r, kernel_us={"eager": 1.0, "inductor": None, "kevolve": 1.0}))
    assert "Inductor failed: RuntimeError" in capsys.readouterr().out


def test_every_run_is_kept_and_a_lost_context_stops_the_rest(tmp_path, monkeypatch):
    """In a child process, a failing run is recorded with its error and the JSON holds every row so far; after a
    failure that lost the CUDA context the child's remaining runs are listed as skipped, not run."""
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
    code = preprocessing.main([str(out), "--modules", "bucketize,mbdt,map_id", "--batches", "2048,8192",
                               "--child", str(tmp_path / "cache")])
    saved = json.loads(out.read_text())
    assert code == 1 and ran == [("bucketize", 2048), ("mbdt", 2048)]
    assert [r["module"] for r in saved["results"]] == ["bucketize"]
    assert saved["failed"][0]["module"] == "mbdt" and "device-side assert" in saved["failed"][0]["error"]
    assert [(s["module"], s["batch"]) for s in saved["skipped"]] == [("map_id", 2048), ("bucketize", 8192),
                                                                     ("mbdt", 8192), ("map_id", 8192)]
    assert all("CUDA context was lost" in s["why"] for s in saved["skipped"])


def test_child_command_runs_its_module_here_into_the_given_cache(tmp_path, monkeypatch):
    """The command the parent starts a child with is this benchmark in child mode: its module and batches measured
    in that process, tuned into the cache named, its runs written to the file named."""
    seen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(preprocessing, "bench", lambda name, batch, device, options, limit: seen.append(
        (name, batch, options["cache_dir"], limit)) or {"module": name, "batch": batch, "correct": {}})
    monkeypatch.setattr(preprocessing, "print_result", lambda r: None)
    monkeypatch.setattr(DeviceInfo, "of", staticmethod(lambda device: DeviceInfo("cuda", "test GPU", "sm_90")))
    out = tmp_path / "runs.json"
    command = preprocessing.child_command("mbdt", [32, 64], 2, 10.0, str(tmp_path / "cache"), out)
    assert command[:3] == [sys.executable, "-m", "benchmarks.preprocessing"]
    assert preprocessing.main(command[3:]) == 0
    assert seen == [("mbdt", 32, str(tmp_path / "cache"), 2), ("mbdt", 64, str(tmp_path / "cache"), 2)]
    assert [(r["module"], r["batch"]) for r in json.loads(out.read_text())["results"]] == [("mbdt", 32), ("mbdt", 64)]


FAKE_CHILD = """
import json, os, sys
name, batches, out = sys.argv[1], [int(b) for b in sys.argv[2].split(",")], sys.argv[3]
results = [{"module": name, "batch": b, "correct": {"kevolve": True}} for b in batches]
if name == "mbdt":  # reports its first batch, then dies as a device-side assert can take a process down
    json.dump({"results": results[:1], "failed": [], "skipped": []}, open(out, "w"))
    print("CUDA error: device-side assert triggered", file=sys.stderr, flush=True)
    os.abort()
json.dump({"results": results, "failed": [], "skipped": []}, open(out, "w"))
"""


def test_a_dying_child_costs_only_its_modules_unreported_runs(tmp_path, monkeypatch):
    """Each module runs in its own process: when one dies (here by SIGABRT) after reporting one batch, its other
    batch is failed with the tail of its stderr, the next module's runs are still merged, and the JSON is written."""
    started = []

    def fake_child(name, batches, limit, budget, cache_dir, out):
        started.append((name, batches, limit, 0 < budget <= 100))
        return [sys.executable, "-c", FAKE_CHILD, name, ",".join(map(str, batches)), str(out)]

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(DeviceInfo, "of", staticmethod(lambda device: DeviceInfo("cuda", "test GPU", "sm_90")))
    out = tmp_path / "prep.json"
    code = preprocessing.main([str(out), "--modules", "bucketize,mbdt,map_id", "--batches", "2048,8192",
                               "--limit", "2", "--budget", "100"], command=fake_child)
    saved = json.loads(out.read_text())
    assert code == 1
    assert started == [(name, [2048, 8192], 2, True) for name in ("bucketize", "mbdt", "map_id")]
    assert [(r["module"], r["batch"]) for r in saved["results"]] == [
        ("bucketize", 2048), ("bucketize", 8192), ("mbdt", 2048), ("map_id", 2048), ("map_id", 8192)]
    [failed] = saved["failed"]
    assert (failed["module"], failed["batch"]) == ("mbdt", 8192) and saved["skipped"] == []
    assert "killed by signal 6" in failed["error"] and "device-side assert" in failed["stderr"]
    assert saved["device"]["name"] == "test GPU" and saved["limit"] == 2
