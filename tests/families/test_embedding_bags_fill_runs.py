"""The fill-runs backward's zero rows (backward_fill_runs, the Triton interpreter): every row no index names is
zeroed by the pass that writes the runs, whether it lies before the first touched row, between two, after the last,
or in a table no index names; gaps longer than GAP_LIMIT go through the listed-gap kernel, over every d slice. Against
F.embedding_bag's float64 autograd, with torch.empty poisoned (conftest) so no unwritten row passes for zero."""
import pytest
import torch
import torch.nn.functional as F

from torch_kevolve.families.embedding_bags import backward_fill_runs
from torch_kevolve.families.embedding_bags.backward_fill_runs import embedding_bags_backward_fill_runs

DIM = 16
GENOME = dict(BLOCK_N=2, BLOCK_D=8, ITEMS_PER_PROGRAM=4, num_warps=1, num_stages=1)  # two d slices


def weight_grads(grads, indices, offsets, num_weights, mode):
    """Each table's dense weight gradient in float64, through F.embedding_bag's autograd."""
    wanted = []
    for g, i, o, rows in zip(grads, indices, offsets, num_weights):
        w = torch.zeros(rows, DIM, dtype=torch.float64, requires_grad=True)
        F.embedding_bag(i, w, o, mode=("sum", "mean")[mode]).backward(g.double())
        wanted.append(w.grad)
    return wanted


def bags_over(rows_named, num_bags, seed):
    """indices naming only `rows_named` (each at least once) in num_bags bags, the offsets, and their grads."""
    g = torch.Generator().manual_seed(seed)
    indices = torch.tensor(rows_named)[torch.randperm(len(rows_named), generator=g)]
    cuts = torch.sort(torch.randint(0, len(rows_named) + 1, (num_bags - 1,), generator=g)).values
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), cuts])
    return indices, offsets, torch.randn(num_bags, DIM, generator=g)


@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("gap_limit", [64, 3])
def test_every_untouched_row_is_zeroed_wherever_its_gap_lies(mode, gap_limit, monkeypatch, poisoned_allocations,
                                                             assert_matches):
    """Table 0: rows 0-69 untouched (a leading gap over 64), then touched rows with gaps of 1 and 5, and an untouched
    tail of 80 rows; table 1: no indices (its 7 rows a gap between table 0's last run and table 2's first); table 2:
    row 0 and its last row touched, many times, with a 30-row gap between. A GAP_LIMIT of 3 lists most gaps."""
    monkeypatch.setattr(backward_fill_runs, "GAP_LIMIT", gap_limit)
    monkeypatch.setattr(backward_fill_runs, "LIST_PROGRAMS", 3)
    num_weights = [160, 7, 32]
    named = [[70, 71, 71, 73, 79, 79, 79], [], [0, 31] * 5]
    tables = [bags_over(rows, 4, seed) if rows else (torch.zeros(0, dtype=torch.long), torch.zeros(4, dtype=torch.long),
                                                    torch.randn(4, DIM))
              for seed, rows in enumerate(named)]
    indices, offsets, grads = (list(parts) for parts in zip(*tables))
    got = embedding_bags_backward_fill_runs(grads, indices, offsets, num_weights, mode, GENOME)
    want = weight_grads(grads, indices, offsets, num_weights, mode)
    for gt, w in zip(got, want):
        assert_matches(gt, w, reach=10, scale=4)
    assert torch.equal(got[0][:70], torch.zeros(70, DIM)) and torch.equal(got[1], torch.zeros(7, DIM))


def test_no_indices_at_all_gives_zero_gradients(poisoned_allocations):
    grads = [torch.randn(3, DIM), torch.randn(3, DIM)]
    empty = [torch.zeros(0, dtype=torch.long)] * 2
    offsets = [torch.zeros(3, dtype=torch.long)] * 2
    got = embedding_bags_backward_fill_runs(grads, empty, offsets, [5, 4], 0, GENOME)
    assert [tuple(g.shape) for g in got] == [(5, DIM), (4, DIM)]
    assert all(torch.equal(g, torch.zeros_like(g)) for g in got)
