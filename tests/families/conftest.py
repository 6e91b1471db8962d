"""Shared fixtures of the family tests: poisoned allocations and dtype-aware comparison."""
import pytest
import torch

from torch_kevolve.families.checking import RTOL

INT_POISON = -7777


@pytest.fixture
def poisoned_allocations(monkeypatch):
    """Every torch.empty made while the fixture is active starts as NaN (floats) or INT_POISON
    (integers), so an element a kernel leaves unwritten cannot pass for a correct zero."""
    empty = torch.empty

    def poisoned_empty(*args, **kwargs):
        t = empty(*args, **kwargs)
        return t.fill_(float("nan") if t.is_floating_point() else INT_POISON)

    monkeypatch.setattr(torch, "empty", poisoned_empty)


@pytest.fixture
def assert_matches():
    """assert_matches(actual, expected, reach, scale): integers exactly; floats within the actual
    dtype's rtol and an atol of rtol * reach * scale (reach: terms one element sums, scale: their
    largest magnitude)."""

    def check(actual: torch.Tensor, expected: torch.Tensor, reach: int = 1, scale: float = 1.0, exact=False):
        assert actual.shape == expected.shape, (actual.shape, expected.shape)
        if not actual.is_floating_point() or exact:
            torch.testing.assert_close(actual.to(expected.dtype), expected, rtol=0, atol=0)
            return
        rtol = RTOL[actual.dtype]
        atol = rtol * max(reach, 1) * scale
        torch.testing.assert_close(actual.double(), expected.double(), rtol=rtol, atol=atol)

    return check
