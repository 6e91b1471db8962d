"""The batched embedding-bag families (kevolve::embedding_bags and its backward): every implementation
against float64 autograd through F.embedding_bag (tables of different sizes, empty bags, repeated rows,
both modes, include_last_offset, int32 indices, half precision), on generated inputs of every distribution,
and the calls they refuse."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from torch_kevolve.families import EMBEDDING_BAGS, EMBEDDING_BAGS_BACKWARD, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Abstraction, Unsupported
from torch_kevolve.families.checking import check_kernel
from torch_kevolve.families.embedding_bag.ops import genome_json
from torch_kevolve.families.embedding_bags.calls import BACKWARD, FORWARD, split

ROWS = (9, 14, 5)
DIM = 16
SMALL_FORWARD = dict(BLOCK_N=8, BLOCK_D=16, BAGS_PER_PROGRAM=2, num_warps=1, num_stages=1)
SMALL_BACKWARD = dict(algorithm="segment", BLOCK_N=8, BLOCK_D=16, ITEMS_PER_PROGRAM=4, num_warps=1, num_stages=1)
SMALL_ROWS = dict(ROWS=4, BLOCK_D=16, num_warps=1, num_stages=1)  # 4-row tiles straddle the tables' boundaries
SMALL_SWEEP = dict(ROWS=4, UNROLL=2, BLOCK_D=16, num_warps=1, num_stages=1)  # rows of over 2 slots take more steps
SMALL_RUNS = dict(BLOCK_N=1, BLOCK_D=16, ITEMS_PER_PROGRAM=4, num_warps=1, num_stages=1)  # runs go on past 4 slots


def tables(seed, include_last_offset, dtype=torch.float32, index_dtype=torch.int64):
    """Per table: weight, indices (rows repeated), offsets (bag 1 empty), grad of the pooled rows."""
    g = torch.Generator().manual_seed(seed)
    weights, indices, offsets, grads = [], [], [], []
    for rows in ROWS:
        lengths = torch.randint(1, 5, (4,), generator=g)
        lengths[1] = 0
        index = torch.randint(0, rows, (int(lengths.sum()),), generator=g)
        offset = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
        if include_last_offset:
            offset = torch.cat([offset, torch.tensor([index.numel()])])
        weights.append(torch.randn(rows, DIM, generator=g).to(dtype))
        indices.append(index.to(index_dtype))
        offsets.append(offset.to(index_dtype))
        grads.append(torch.randn(4, DIM, generator=g).to(dtype))
    return weights, indices, offsets, grads


def autograd_reference(weights, indices, offsets, grads, mode, include_last_offset):
    """Pooled rows and weight gradients of each table in float64, through F.embedding_bag's autograd."""
    pooled, weight_grads = [], []
    for w, i, o, g in zip(weights, indices, offsets, grads):
        w = w.double().requires_grad_()
        out = F.embedding_bag(i, w, o, mode=("sum", "mean")[mode], include_last_offset=include_last_offset)
        out.backward(g.double())
        pooled.append(out.detach())
        weight_grads.append(w.grad)
    return pooled, weight_grads


def runs(family, problem):
    """Each Triton implementation with a small genome, the decomposition with each of its genomes."""
    if family is EMBEDDING_BAGS_BACKWARD:
        triton_impl, rows, sweep, bag_runs, fill_runs, decomposition = family.implementations
        small = [(triton_impl, SMALL_BACKWARD), (rows, SMALL_ROWS), (sweep, SMALL_SWEEP), (bag_runs, SMALL_RUNS),
                 (fill_runs, SMALL_RUNS)]
    else:
        triton_impl, decomposition = family.implementations
        small = [(triton_impl, SMALL_FORWARD)]
    return small + [(decomposition, genome) for genome in decomposition.genomes(problem)]


CASES = [(mode, ilo, dtype, index) for mode in (0, 1) for ilo in (False, True)
         for dtype, index in ((torch.float32, torch.int64), (torch.bfloat16, torch.int32))]


@pytest.mark.parametrize("mode,include_last_offset,dtype,index_dtype", CASES)
def test_every_implementation_matches_autograd(mode, include_last_offset, dtype, index_dtype, assert_matches,
                                               poisoned_allocations):
    weights, indices, offsets, grads = tables(mode + 2 * include_last_offset, include_last_offset, dtype, index_dtype)
    want_pooled, want_grads = autograd_reference(weights, indices, offsets, grads, mode, include_last_offset)
    forward_args = (weights, indices, offsets, mode, include_last_offset)
    backward_args = (grads, indices, offsets, list(ROWS), mode, include_last_offset)
    for family, overload, args, want in ((EMBEDDING_BAGS, FORWARD, forward_args, want_pooled),
                                         (EMBEDDING_BAGS_BACKWARD, BACKWARD, backward_args, want_grads)):
        problem = family.problem(overload, args, {})
        assert len(runs(family, problem)) >= 2
        for impl, genome in runs(family, problem):
            got = impl.build(problem, genome)(*args)
            assert len(got) == len(ROWS), (impl.name, genome)
            for g, w in zip(got, want):
                assert g.dtype == dtype, (impl.name, genome)
                assert_matches(g, w, reach=8, scale=4)


@pytest.mark.parametrize("family,overload", [(EMBEDDING_BAGS, FORWARD), (EMBEDDING_BAGS_BACKWARD, BACKWARD)])
def test_generated_inputs(family, overload):
    for problem in family.example_problems(overload):
        for impl, genome in runs(family, problem):
            check_kernel(family, problem, impl.build(problem, genome), torch.device("cpu"), seeds=(0, 1),
                         dists=DISTRIBUTIONS)


def test_problem_totals_and_registry():
    weights, indices, offsets, grads = tables(0, False)
    problem = EMBEDDING_BAGS.problem(FORWARD, (weights, indices, offsets, 1, False), {})
    assert problem.param("tables") == 3 and problem.dim("rows") == sum(ROWS) and problem.dim("bags") == 12
    assert problem.dim("indices") == sum(i.numel() for i in indices)
    backward = EMBEDDING_BAGS_BACKWARD.problem(BACKWARD, (grads, indices, offsets, list(ROWS), 1, False), {})
    assert backward.dims == problem.dims and backward.family == "embedding_bags_backward"
    assert family_for(FORWARD) is EMBEDDING_BAGS and family_for(BACKWARD) is EMBEDDING_BAGS_BACKWARD
    assert split(10, 3) == [4, 3, 3] and sum(split(7, 7)) == 7


def refused(change):
    weights, indices, offsets, _ = tables(0, False)
    args = change([weights, indices, offsets, 0, False])
    with pytest.raises(Unsupported) as info:
        EMBEDDING_BAGS.problem(FORWARD, tuple(args), {})
    return str(info.value)


def test_refused_calls_say_why():
    assert "mode 2" in refused(lambda a: a[:3] + [2, False])
    assert "width" in refused(lambda a: [[a[0][0], a[0][1][:, :8], a[0][2]]] + a[1:])
    assert "dtype" in refused(lambda a: [[a[0][0], a[0][1].double(), a[0][2]]] + a[1:])
    assert "per table" in refused(lambda a: [a[0][:2]] + a[1:])
    with pytest.raises(Unsupported):
        EMBEDDING_BAGS.problem(BACKWARD, (), {})


def test_strided_tables_are_left_to_the_decomposition(assert_matches):
    weights, indices, offsets, grads = tables(3, False)
    strided = [w.t().contiguous().t() for w in weights]
    args = (strided, indices, offsets, 0, False)
    problem = EMBEDDING_BAGS.problem(FORWARD, args, {})
    triton_impl, decomposition = EMBEDDING_BAGS.implementations
    assert "contiguous" in triton_impl.supports(problem, SMALL_FORWARD)
    want, _ = autograd_reference(weights, indices, offsets, grads, 0, False)
    for got, w in zip(decomposition.build(problem, {})(*args), want):
        assert_matches(got, w, reach=8, scale=4)


def test_many_tables_run_in_launches_of_at_most_the_limit(monkeypatch, assert_matches):
    from torch_kevolve.families.embedding_bags import backward_runs, backward_sweep, forward_triton

    monkeypatch.setattr(forward_triton, "MAX_TABLES_PER_LAUNCH", 2)
    monkeypatch.setattr(backward_sweep, "MAX_TABLES_PER_LAUNCH", 2)
    weights, indices, offsets, grads = tables(4, True)
    want, want_grads = autograd_reference(weights, indices, offsets, grads, 1, True)
    got = forward_triton.embedding_bags_forward(weights, indices, offsets, 1, True, SMALL_FORWARD)
    for g, w in zip(got, want):
        assert_matches(g, w, reach=8, scale=4)
    for got in (backward_sweep.embedding_bags_backward_sweep(grads, indices, offsets, list(ROWS), 1, SMALL_SWEEP),
                backward_runs.embedding_bags_backward_runs(grads, indices, offsets, list(ROWS), 1, SMALL_RUNS)):
        for g, w in zip(got, want_grads):
            assert_matches(g, w, reach=8, scale=4)


def test_rows_backward_is_offered_after_segment_and_refuses_what_it_cannot_do():
    """The segment implementation stays the default; rows refuses max mode and tiles wider than the rows need."""
    _, indices, offsets, grads = tables(0, False)
    problem = EMBEDDING_BAGS_BACKWARD.problem(BACKWARD, (grads, indices, offsets, list(ROWS), 0, False), {})
    rows = EMBEDDING_BAGS_BACKWARD.implementation("embedding_bags_backward_rows")
    default, _ = EMBEDDING_BAGS_BACKWARD.default_kernel(problem, Abstraction.TRITON)
    assert default.name == "embedding_bags_backward_triton"
    assert "max" in rows.supports(dataclasses.replace(problem, params=(("mode", 2), *problem.params[1:])), SMALL_ROWS)
    assert "wider" in rows.supports(problem, dict(SMALL_ROWS, BLOCK_D=32))
    assert {g["BLOCK_D"] for g in rows.genomes(problem)} == {16}


@pytest.mark.parametrize("algorithm,genome", [("segment", SMALL_BACKWARD), ("rows", SMALL_ROWS)])
def test_stacked_backward_custom_op_passes_opcheck(algorithm, genome):
    _, indices, offsets, grads = tables(5, True, torch.bfloat16, torch.int32)
    args = (grads, indices, offsets, list(ROWS), 1, algorithm, genome_json(genome))
    torch.library.opcheck(torch.ops.kevolve.stacked_embedding_bags_backward.default, args)


@pytest.mark.parametrize("mode", (0, 1))
@pytest.mark.parametrize("name,genome", [("embedding_bags_backward_sweep", SMALL_SWEEP),
                                         ("embedding_bags_backward_runs", SMALL_RUNS),
                                         ("embedding_bags_backward_fill_runs", SMALL_RUNS)])
def test_bag_tile_backwards_sum_long_rows_and_read_strided_grads(mode, name, genome, assert_matches):
    """One row named by 11 indices over two bags (sweep: six steps of 2 slots; runs: a run through three 4-slot
    programs), a table whose rows are all untouched, 5-row tables in 4-row blocks; the grads are strided views of
    one [bags, tables, dim] tensor."""
    g = torch.Generator().manual_seed(7)
    num_weights = [5, 6, 9]
    indices = [torch.tensor([3] * 6 + [0, 3, 3, 3, 3, 3, 4]), torch.zeros(0, dtype=torch.long),
               torch.randint(0, 9, (10,), generator=g)]
    offsets = [torch.tensor([0, 6, 7, 7]), torch.tensor([0, 0, 0, 0]), torch.tensor([0, 2, 5, 9])]
    grads = list(torch.randn(4, 3, DIM, generator=g).unbind(1))
    assert not grads[0].is_contiguous()
    weights = [torch.zeros(rows, DIM) for rows in num_weights]
    _, want = autograd_reference(weights, indices, offsets, grads, mode, False)
    args = (grads, indices, offsets, num_weights, mode, False)
    problem = EMBEDDING_BAGS_BACKWARD.problem(BACKWARD, args, {})
    got = EMBEDDING_BAGS_BACKWARD.implementation(name).build(problem, genome)(*args)
    for gt, w in zip(got, want):
        assert_matches(gt, w, reach=11, scale=4)
    assert torch.equal(got[1], torch.zeros(6, DIM))


@pytest.mark.parametrize("algorithm,genome", [("sweep", SMALL_SWEEP), ("runs", SMALL_RUNS), ("fill_runs", SMALL_RUNS)])
def test_bag_tile_custom_op_passes_opcheck(algorithm, genome):
    _, indices, offsets, grads = tables(6, True, torch.bfloat16, torch.int32)
    args = (grads, indices, offsets, list(ROWS), 1, algorithm, genome_json(genome))
    torch.library.opcheck(torch.ops.kevolve.bag_tile_embedding_bags_backward.default, args)


def test_sweep_refuses_strided_grads_and_says_why():
    """The sweep's in-model time on strided grads disagreed with the evaluator's (STRIDED_GRADS), so the search
    must not pick it there; the other implementations still run such a problem."""
    _, indices, offsets, grads = tables(8, False)
    strided = [torch.randn(4, 2, DIM)[:, 0] for _ in grads]
    problem = EMBEDDING_BAGS_BACKWARD.problem(BACKWARD, (strided, indices, offsets, list(ROWS), 0, False), {})
    assert not problem.contiguous
    sweep = EMBEDDING_BAGS_BACKWARD.implementation("embedding_bags_backward_sweep")
    assert "strided grads" in sweep.supports(problem, SMALL_SWEEP) and not sweep.genomes(problem)
    assert EMBEDDING_BAGS_BACKWARD.implementation("embedding_bags_backward_triton").supports(problem, SMALL_BACKWARD) is None
    assert EMBEDDING_BAGS_BACKWARD.implementation("embedding_bags_backward_runs").supports(problem, SMALL_RUNS) is None


@pytest.mark.parametrize("dim_name", ["rows", "indices", "bags"])
def test_bag_tile_backwards_refuse_what_int32_cannot_index(dim_name):
    _, indices, offsets, grads = tables(9, False)
    problem = EMBEDDING_BAGS_BACKWARD.problem(BACKWARD, (grads, indices, offsets, list(ROWS), 0, False), {})
    huge = dataclasses.replace(problem, dims=tuple((n, 2**31 if n == dim_name else v) for n, v in problem.dims))
    for name, genome in (("embedding_bags_backward_sweep", SMALL_SWEEP), ("embedding_bags_backward_runs", SMALL_RUNS),
                         ("embedding_bags_backward_fill_runs", SMALL_RUNS)):
        implementation = EMBEDDING_BAGS_BACKWARD.implementation(name)
        assert implementation.supports(problem, genome) is None
        assert "int32" in implementation.supports(huge, genome)
