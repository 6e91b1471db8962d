"""The stacked multi-table backward (one sorted pass for all tables, segment or rows) against each table's float64
autograd gradient, under the Triton interpreter: tables of different sizes, empty bags, repeated rows, both modes."""
import pytest
import torch
import torch.nn.functional as F

from torch_kevolve.families.embedding_bag.multi_table import embedding_bags_backward, embedding_bags_backward_rows

GENOME = dict(algorithm="segment", BLOCK_N=8, BLOCK_D=16, ITEMS_PER_PROGRAM=4, num_warps=4, num_stages=1)
ROWS_GENOME = dict(ROWS=4, BLOCK_D=16, num_warps=4, num_stages=1)  # 4-row tiles straddle the tables' boundaries
ALGORITHMS = {"segment": (embedding_bags_backward, GENOME), "rows": (embedding_bags_backward_rows, ROWS_GENOME)}
ROWS = (7, 13, 5)  # rows of each table
DIM = 16


def tables(seed: int, include_last_offset: bool, index_dtype=torch.int64):
    """Per table: weight, indices (some rows repeated), offsets (some bags empty), grad of the pooled output."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for rows in ROWS:
        lengths = torch.randint(0, 4, (5,), generator=g)
        lengths[1] = 0
        indices = torch.randint(0, rows, (int(lengths.sum()),), generator=g).to(index_dtype)
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]]).to(index_dtype)
        if include_last_offset:
            offsets = torch.cat([offsets, torch.tensor([indices.numel()], dtype=index_dtype)])
        out.append((torch.randn(rows, DIM, generator=g), indices, offsets, torch.randn(5, DIM, generator=g)))
    return out


def reference(weight, indices, offsets, grad, mode, include_last_offset):
    w = weight.double().requires_grad_()
    pooled = F.embedding_bag(indices, w, offsets, mode=mode, include_last_offset=include_last_offset)
    pooled.backward(grad.double())
    return w.grad


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("include_last_offset", [False, True])
def test_each_table_gets_its_own_gradient(mode, include_last_offset, algorithm, assert_matches, poisoned_allocations):
    backward, genome = ALGORITHMS[algorithm]
    data = tables(mode + 2 * include_last_offset, include_last_offset)
    got = backward([d[3] for d in data], [d[1] for d in data], [d[2] for d in data], ROWS, mode, genome)
    assert [tuple(g.shape) for g in got] == [(rows, DIM) for rows in ROWS]
    for g, (weight, indices, offsets, grad) in zip(got, data):
        want = reference(weight, indices, offsets, grad, ("sum", "mean")[mode], include_last_offset)
        assert_matches(g, want, reach=indices.numel(), scale=float(grad.abs().max()))


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_int32_indices_and_offsets(algorithm, assert_matches):
    backward, genome = ALGORITHMS[algorithm]
    data = tables(7, False, torch.int32)
    got = backward([d[3] for d in data], [d[1] for d in data], [d[2] for d in data], ROWS, 0, genome)
    for g, (weight, indices, offsets, grad) in zip(got, data):
        want = reference(weight, indices.long(), offsets.long(), grad, "sum", False)
        assert_matches(g, want, reach=indices.numel(), scale=float(grad.abs().max()))


def test_bad_calls_are_refused():
    data = tables(0, False)
    with pytest.raises(ValueError, match="segment"):
        embedding_bags_backward([d[3] for d in data], [d[1] for d in data], [d[2] for d in data], ROWS, 0,
                                {**GENOME, "algorithm": "atomic"})
    with pytest.raises(ValueError, match="one grad"):
        embedding_bags_backward([d[3] for d in data], [d[1] for d in data], [d[2] for d in data], ROWS[:2], 0, GENOME)
    with pytest.raises(ValueError, match="one grad"):
        embedding_bags_backward_rows([], [], [], [], 0, ROWS_GENOME)
