"""The coverage suite on CPU (Triton interpreter): every sample of every claimed overload passes.

OpInfo samples traced to the overloads they reach plus each family's random inputs, all of them
(no limit), compared with the float64 reference; samples a family does not accept are counted as
not claimed, never dropped.
"""
import pytest
import torch

from torch_kevolve.coverage import run_coverage, summary
from torch_kevolve.coverage.run import check_sample
from torch_kevolve.coverage.samples import Sample
from torch_kevolve.families import FAMILIES, POINTWISE

aten = torch.ops.aten
MIN_OVERLOADS = 160


@pytest.fixture(scope="module")
def results():
    return run_coverage(FAMILIES, "cpu")


def test_every_claimed_sample_passes(results):
    assert {r.overload: r.failures for r in results if r.failed} == {}


def test_every_registered_overload_is_proven(results):
    assert [r.overload for r in results if not r.proven] == []
    assert [r.overload for r in results] == [str(o) for f in FAMILIES for o in f.overloads]


def test_overload_count(results):
    assert summary(results)["proven"] >= MIN_OVERLOADS


def test_opinfo_samples_reach_backward_and_out_variants(results):
    by_overload = {r.overload: r for r in results}
    for name in ("aten.threshold_backward.default", "aten.gelu_backward.default", "aten.add.out", "aten.mul_.Tensor"):
        assert by_overload[name].passed > 0, name


@pytest.mark.parametrize("args, reason", [
    ((torch.ones(3, dtype=torch.complex64), torch.ones(3, dtype=torch.complex64)), "complex"),
    ((torch.ones(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)), "float64"),
    ((torch.ones(3).to_sparse(), torch.ones(3).to_sparse()), "layout"),
])
def test_samples_outside_the_family_are_not_claimed(args, reason):
    outcome, message = check_sample(POINTWISE, Sample(aten.mul.Tensor, args, "test"))
    assert outcome == "not claimed" and reason in message
