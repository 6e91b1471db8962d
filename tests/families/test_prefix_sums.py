"""inclusive_prefix_sums (the Triton interpreter) against torch.cumsum: one element, a partial block, several blocks
(the carry summed over more than one SUMS_BLOCK step), zeros, and what it refuses."""
import pytest
import torch

from torch_kevolve.families import prefix_sums
from torch_kevolve.families.prefix_sums import inclusive_prefix_sums


@pytest.mark.parametrize("n", [1, 5, 64, 64 * 9 + 3])
def test_matches_torch_cumsum(n, monkeypatch):
    monkeypatch.setattr(prefix_sums, "BLOCK", 16)
    monkeypatch.setattr(prefix_sums, "SUMS_BLOCK", 8)  # 37 blocks: the carry takes five steps
    x = torch.randint(0, 7, (n,), generator=torch.Generator().manual_seed(n), dtype=torch.int32)
    x[::5] = 0
    got = inclusive_prefix_sums(x)
    assert got.dtype == torch.int32 and torch.equal(got, torch.cumsum(x, 0, dtype=torch.int32))


def test_default_blocks_match_torch_cumsum():
    x = torch.randint(0, 3, (prefix_sums.BLOCK * 2 + 17,), generator=torch.Generator().manual_seed(1), dtype=torch.int32)
    assert torch.equal(inclusive_prefix_sums(x), torch.cumsum(x, 0, dtype=torch.int32))


def test_refuses_other_dtypes_ranks_and_strides():
    for bad in (torch.zeros(4, dtype=torch.int64), torch.zeros(2, 2, dtype=torch.int32),
                torch.zeros(8, dtype=torch.int32)[::2]):
        with pytest.raises(ValueError, match="contiguous 1-D int32"):
            inclusive_prefix_sums(bad)


def test_kernels_compile_for_sm90(monkeypatch):
    from tests.families.test_sm90_compile import assert_compiled, captured_launches

    captured = captured_launches(monkeypatch, prefix_sums)
    inclusive_prefix_sums(torch.zeros(2_600_000, dtype=torch.int32))
    assert_compiled(captured, "block_sums_kernel", "scan_blocks_kernel")
