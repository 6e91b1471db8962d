"""The rows backward launcher (sort by row, then one gather per tile of table rows) against the embedding_bag
backward family's float64 reference, under the Triton interpreter: every dtype, sum and mean, per-sample weights,
padding_idx, include_last_offset, strided grads, hot rows named more often than a tile has rows, untouched
rows, empty bags; every output element must be written (poisoned allocations). Its kernels compile for sm_90."""
import pytest
import torch

from tests.families.test_embedding_bag_backward import BACKWARD, DTYPES, SIZES, check_against_reference, make_problem
from tests.families.test_sm90_compile import assert_compiled, captured_launches
from torch_kevolve.families import EMBEDDING_BAG_BACKWARD
from torch_kevolve.families.embedding_bag import row_sort, rows_backward
from torch_kevolve.families.embedding_bag.rows_backward import embedding_bag_backward_rows

aten = torch.ops.aten


def run_rows(args, genome):
    """The launcher on `aten._embedding_bag_backward`'s arguments."""
    grad, indices, offsets, _, _, _, num_weights, _, mode, _, per_sample_weights, padding_idx = args
    return embedding_bag_backward_rows(grad, indices, offsets, per_sample_weights, num_weights, mode, padding_idx,
                                       genome)


@pytest.mark.parametrize("k,dtype", list(enumerate(DTYPES * 2)))
def test_rows_matches_reference(k, dtype, poisoned_allocations, assert_matches):
    mode, psw, padding, ilo = k % 2, k in (0, 4), k % 3 != 1, k >= 3
    num_bags, dim, num_weights = SIZES[k % len(SIZES)]
    problem = make_problem(BACKWARD, mode, dtype, psw, padding, ilo, (torch.int64, torch.int32)[k % 2], num_bags,
                           dim, num_weights, 3 * num_bags, contiguous=k != 4)
    genome = dict(ROWS=(16, 4, 1)[k % 3], BLOCK_D=(32, 16)[k % 2], num_warps=4, num_stages=1)
    args = EMBEDDING_BAG_BACKWARD.make_inputs(problem, k, ("normal", "edge")[k % 2], torch.device("cpu"))
    check_against_reference(problem, args, run_rows(args, genome), assert_matches)


@pytest.mark.parametrize("mode,dtype,psw,padding,ilo,rows", [
    (0, torch.float32, True, True, False, 16),
    (1, torch.bfloat16, False, True, True, 4),
    (0, torch.float16, True, False, True, 1),
    (1, torch.float32, False, False, False, 64),
])
def test_hot_and_untouched_rows(mode, dtype, psw, padding, ilo, rows, poisoned_allocations, assert_matches):
    """70 rows x 40 columns (partial row and column tiles): row 17 named 40 times, row 69 (the last tile's)
    20 times, padding_idx's row 3 named too, most rows never, and empty bags."""
    g = torch.Generator().manual_seed(rows)
    indices = torch.cat([torch.full((40,), 17), torch.full((20,), 69), torch.tensor([3, 0, 3, 50, 0, 3])])
    indices = indices[torch.randperm(indices.numel(), generator=g)]
    starts = torch.tensor([0, 5, 5, 30, 31, 31, 50, 66])
    offsets = torch.cat([starts, torch.tensor([indices.numel()])]) if ilo else starts
    weight = torch.randn(70, 40, generator=g).to(dtype)
    per_sample_weights = torch.rand(indices.numel(), generator=g).to(dtype) if psw else None
    padding_idx = 3 if padding else -1
    _, offset2bag, bag_size, max_indices = aten._embedding_bag(weight, indices, offsets, False, mode, False,
                                                               per_sample_weights, ilo, padding_idx)
    grad = torch.randn(starts.numel(), 40, generator=g).to(dtype)
    args = (grad, indices, offsets, offset2bag, bag_size, max_indices, 70, False, mode, False, per_sample_weights,
            padding_idx)
    problem = EMBEDDING_BAG_BACKWARD.problem(BACKWARD, args, {})
    genome = dict(ROWS=rows, BLOCK_D=16, num_warps=1, num_stages=1)
    check_against_reference(problem, args, run_rows(args, genome), assert_matches)


@pytest.mark.parametrize("mode,dtype,psw,padding_idx,index_dtype,contiguous,genome", [
    (0, torch.float32, True, 0, torch.int64, False, dict(ROWS=64, BLOCK_D=32, num_warps=8, num_stages=2)),
    (1, torch.bfloat16, False, -1, torch.int32, True, dict(ROWS=1, BLOCK_D=256, num_warps=2, num_stages=1)),
])
def test_rows_kernels_compile_for_sm90(monkeypatch, mode, dtype, psw, padding_idx, index_dtype, contiguous, genome):
    """Per-sample weights, padding_idx and strided grads, with the arguments the launcher passes (captured)."""
    captured = captured_launches(monkeypatch, row_sort, rows_backward)
    grad = torch.zeros(32, 128, dtype=dtype) if contiguous else torch.zeros(128, 32, dtype=dtype).t()
    indices, offsets = torch.zeros(96, dtype=index_dtype), torch.arange(0, 96, 3, dtype=index_dtype)
    embedding_bag_backward_rows(grad, indices, offsets, torch.ones(96, dtype=dtype) if psw else None, 64, mode,
                                padding_idx, genome)
    assert_compiled(captured, "count_rows_kernel", "place_entries_kernel", "gather_rows_kernel")
