"""The correctness check every candidate goes through: tolerances, overflow, NaN, mutation."""
import pytest
import torch

from torch_kevolve.families.checking import Mismatch, Trial, check_trials, compare


class OneOutput:
    """The least of a family that `compare` needs."""

    def checked_outputs(self, problem):
        return (0,)

    def reduced_extent(self, problem, args):
        return 4


FAMILY = OneOutput()


def test_overflow_to_infinity_is_the_right_fp16_answer():
    want = torch.tensor([1e6, -1e6, 3.0], dtype=torch.float64)
    assert compare(FAMILY, None, [torch.tensor([float("inf"), float("-inf"), 3.0], dtype=torch.float16)], [want]) == 0.0


def test_overflowed_values_do_not_widen_the_tolerance():
    want = torch.tensor([1e6, 3.0], dtype=torch.float64)
    with pytest.raises(Mismatch):
        compare(FAMILY, None, [torch.tensor([float("inf"), 3.5], dtype=torch.float16)], [want])


def test_infinity_where_the_result_is_representable_fails():
    want = torch.tensor([1e4, 3.0], dtype=torch.float64)
    with pytest.raises(Mismatch):
        compare(FAMILY, None, [torch.tensor([float("inf"), 3.0], dtype=torch.float16)], [want])


def test_nan_and_errors_beyond_tolerance_fail():
    want = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    with pytest.raises(Mismatch):
        compare(FAMILY, None, [torch.tensor([1.0, float("nan"), 3.0])], [want])
    with pytest.raises(Mismatch):
        compare(FAMILY, None, [torch.tensor([1.0, 2.001, 3.0])], [want])
    assert compare(FAMILY, None, [torch.tensor([1.0, 2.0, 3.0])], [want], extent=4) < 1e-6


def test_integer_outputs_must_be_exact():
    with pytest.raises(Mismatch, match="integer"):
        compare(FAMILY, None, [torch.tensor([1, 2, 4])], [torch.tensor([1, 2, 3])])


def test_a_kernel_that_mutates_its_input_fails():
    x = torch.randn(5)

    def sneaky(t):
        t.add_(1)
        return t - 1

    with pytest.raises(Mismatch, match="mutated"):
        check_trials(FAMILY, None, sneaky, [Trial((x,), (x.double(),))])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_sums_must_accumulate_in_fp32(dtype):
    """Row sums of 512 terms with much cancellation: accumulated in fp32 and rounded once they pass; accumulated
    term by term in the half dtype (what no ATen or Inductor kernel does) they fail."""
    g = torch.Generator().manual_seed(0)
    terms = torch.randn(64, 512, generator=g).to(dtype)
    want = terms.double().sum(1)
    fp32 = terms.float().sum(1).to(dtype)
    compare(FAMILY, None, [fp32], [want], extent=512)
    half = torch.zeros(64, dtype=dtype)
    for j in range(512):
        half = half + terms[:, j]
    with pytest.raises(Mismatch):
        compare(FAMILY, None, [half], [want], extent=512)
