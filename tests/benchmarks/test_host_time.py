"""benchmarks.host_time on CPU: both contenders' forward (or training step) of a small model timed and profiled into
the JSON; on a
machine without CUDA the default device is skipped cleanly."""
import json

import pytest
import torch

from benchmarks import host_time


@pytest.mark.parametrize("phase", ["forward", "train"])
def test_host_time_profiles_both_contenders(tmp_path, capsys, phase):
    out = tmp_path / "host.json"
    assert host_time.main(["dlrm_tiny", str(out), "--device", "cpu", "--steps", "2", "--phase", phase]) == 0
    result = json.loads(out.read_text())
    assert result["model"] == "dlrm_tiny" and result["phase"] == phase
    assert set(result["contenders"]) == {"inductor", "kevolve"}
    for r in result["contenders"].values():
        assert r["wall_us"] > 0 and r["ops"] and "function calls" in r["python"]
        assert all(row["self_us"] >= 0 for row in r["ops"])
        want = {"forward_host_us", "backward_host_us"} if phase == "train" else {"forward_host_us"}
        assert set(r["host_split"]) == want and all(v > 0 for v in r["host_split"].values())
        assert any("backward" in row["op"].lower() for row in r["ops"]) == (phase == "train")
    assert f"us per {phase} step" in capsys.readouterr().out


class _Clocked(torch.nn.Module):
    """A model whose forward takes 3 ms and whose backward takes 5 ms of the clock `now`."""

    def __init__(self, now: list):
        super().__init__()
        self.now = now
        self.weight = torch.nn.Parameter(torch.ones(2))
        self.weight.register_hook(lambda grad: now.__setitem__(0, now[0] + 0.005))

    def forward(self, x):
        self.now[0] += 0.003
        return (self.weight * x).sum()


@pytest.mark.parametrize("phase", ["forward", "train"])
def test_host_split_times_each_phase_per_step(monkeypatch, phase):
    now = [0.0]
    monkeypatch.setattr(host_time.time, "perf_counter", lambda: now[0])
    split = host_time.host_split_us(_Clocked(now), (torch.ones(2),), torch.device("cpu"), 4, phase)
    want = {"forward_host_us": 3000.0, "backward_host_us": 5000.0} if phase == "train" else {"forward_host_us": 3000.0}
    assert split == pytest.approx(want)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the skip is for machines without CUDA")
def test_host_time_skips_cleanly_without_cuda(tmp_path, capsys):
    assert host_time.main(["dlrm_tiny", str(tmp_path / "out.json")]) == 0
    assert "needs a CUDA device; skipped" in capsys.readouterr().out and not (tmp_path / "out.json").exists()
