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
        # on CPU a step's work is its host time: per step, the phases add up to about its wall time
        assert 0.2 * r["wall_us"] < sum(r["host_split"].values()) < 5 * r["wall_us"]
        assert any("backward" in row["op"].lower() for row in r["ops"]) == (phase == "train")
    assert f"us per {phase} step" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="the skip is for machines without CUDA")
def test_host_time_skips_cleanly_without_cuda(tmp_path, capsys):
    assert host_time.main(["dlrm_tiny", str(tmp_path / "out.json")]) == 0
    assert "needs a CUDA device; skipped" in capsys.readouterr().out and not (tmp_path / "out.json").exists()
