"""The GPU coverage script end to end on a small selection: coverage and speed tables written.
Skipped without a GPU."""
import json

import pytest
import torch

from benchmarks import coverage_gpu

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_coverage_and_speed_tables(tmp_path):
    assert coverage_gpu.main([str(tmp_path), "--family", "pointwise", "--limit", "1", "--device-label", "test"]) == 0
    coverage = json.loads((tmp_path / "coverage-test.json").read_text())
    assert coverage["summary"]["samples_failed"] == 0
    speed = json.loads((tmp_path / "speed-test.json").read_text())
    assert len(speed["rows"]) == coverage["summary"]["proven"]
    assert all(row["triton_us"] for row in speed["rows"])

