"""The microbenchmark's row on CPU (timing stubbed: do_bench needs a GPU): every contender checked against the
float64 reference, with its error kept per contender and per sweep genome; a wrong contender is refused, a
baseline off the family's tolerance only has its error recorded."""
import pytest
import torch

import benchmarks.microbench as microbench
from benchmarks.gemm import SWEEP, split_operands
from torch_kevolve.families import GEMM
from torch_kevolve.families.checking import Mismatch
from torch_kevolve.families.gemm.calls import MM


@pytest.fixture
def untimed(monkeypatch):
    monkeypatch.setattr(microbench, "median_us", lambda fn: (fn(), 1.0)[1])


def _operands():
    g = torch.Generator().manual_seed(0)
    return torch.randn(100, 24, generator=g), torch.randn(24, 200, generator=g)  # room for SWEEP's blocks


def test_row_keeps_each_contenders_error(untimed):
    args = _operands()
    row = microbench.measure("t", GEMM, MM, args, torch.mm, SWEEP[:2], split_operands(args))
    names = ("eager", "inductor", "triton_default", "triton_best", "presplit", "b_parts")
    errors = [row[f"{name}_rel_err"] for name in names] + [s["rel_err"] for s in row["sweep"]]
    assert len(row["sweep"]) == 3 and all(0 <= e < 1e-6 for e in errors)
    assert row["eager_rel_err"] > 0  # fp32 rounding against float64: the error is measured, not assumed


def test_a_wrong_contender_is_refused(untimed):
    args = _operands()
    with pytest.raises(Mismatch):
        microbench.measure("t", GEMM, MM, args, torch.mm, [], {"wrong": lambda a, b: (a @ b) * (1 + 1e-4)})


def test_a_baseline_off_the_tolerance_is_recorded_not_refused(untimed):
    args = _operands()
    row = microbench.measure("t", GEMM, MM, args, lambda a, b: (a @ b) * (1 + 1e-2), [], {})
    assert row["eager_rel_err"] > 1e-3 and row["triton_default_rel_err"] < 1e-6
