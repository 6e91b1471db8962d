"""The reduction family: both implementations against ATen in float64 on calls as OpInfo makes them
(any dims, keepdim, negative and empty dim lists, 0-d, strided inputs, integer and bool inputs, NaNs),
long rows split over several programs, the generated inputs, and the calls it refuses."""
import math

import pytest
import torch

from torch_kevolve.families import REDUCTION, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import as_tuple, check_kernel, compare
from torch_kevolve.families.reduction import triton_kernel
from torch_kevolve.families.reduction.spec import describe

aten = torch.ops.aten
g = torch.Generator().manual_seed(0)
X = torch.randn(4, 5, 6, generator=g)
STRIDED = X.transpose(0, 2)
TIES = torch.tensor([[1.0, 3.0, 3.0, -2.0], [0.0, 0.0, 0.0, 0.0], [-1.0, float("nan"), 5.0, float("nan")]])
INTS = torch.randint(-5, 5, (3, 7), generator=g, dtype=torch.int32)
# (overload, positional args, keyword args)
CALLS = [
    (aten.sum.default, (X,), {}),
    (aten.sum.default, (INTS,), {}),
    (aten.sum.default, (X.half(),), {"dtype": torch.float64}),
    (aten.sum.dim_IntList, (X, [0, -1]), {}),
    (aten.sum.dim_IntList, (STRIDED, [1], True), {}),
    (aten.sum.dim_IntList, (X, []), {}),
    (aten.sum.dim_IntList, (torch.zeros(3, 0), [1]), {}),
    (aten.sum.dim_IntList, (INTS > 0, [1]), {}),
    (aten.nansum.default, (TIES, [1]), {}),
    (aten.nansum.default, (INTS,), {"dtype": torch.float32}),
    (aten.count_nonzero.default, (TIES, -1)),
    (aten.count_nonzero.dim_IntList, (STRIDED.half().round(), [0, 2])),
    (aten.mean.default, (X.bfloat16(),), {}),
    (aten.mean.dim, (STRIDED, [0, 2], True), {}),
    (aten.mean.dim, (torch.zeros(0, 3), [0]), {}),
    (aten.prod.default, (X[0],), {}),
    (aten.prod.dim_int, (INTS, -1, True), {}),
    (aten.prod.dim_int, (X.double(), 1), {}),
    (aten.amax.default, (X, [1, 2]), {}),
    (aten.amax.default, (TIES, [1]), {}),
    (aten.amax.default, (INTS.to(torch.int16), [0], True), {}),
    (aten.amin.default, (STRIDED.half(), [-1]), {}),
    (aten.amin.default, (torch.tensor(2.5), []), {}),
    (aten.argmax.default, (TIES, 1), {}),
    (aten.argmax.default, (X,), {}),
    (aten.argmax.default, (STRIDED, 0, True), {}),
    (aten.argmin.default, (TIES, -1), {}),
    (aten.argmin.default, (INTS.to(torch.uint8), 1), {}),
    (aten.max.dim, (TIES, 1), {}),
    (aten.max.dim, (STRIDED.half(), 0, True), {}),
    (aten.min.dim, (TIES, -1, True), {}),
    (aten.min.dim, (INTS > 0, 1), {}),
    (aten.max.default, (TIES[:2],), {}),
    (aten.min.default, (INTS,), {}),
    (aten.var.correction, (X, [1]), {}),
    (aten.var.correction, (STRIDED.bfloat16(), [0, 1]), {"correction": 0, "keepdim": True}),
    (aten.var.correction, (X[0, 0, :2], None), {"correction": 3}),
    (aten.std.correction, (X.double(), None), {}),
    (aten.var_mean.correction, (X, [-1]), {"keepdim": True}),
    (aten.std_mean.correction, (STRIDED.half(), [2]), {"correction": 2}),
    (aten.linalg_vector_norm.default, (X, 2.0), {}),
    (aten.linalg_vector_norm.default, (STRIDED, 1.0, [0])), 
    (aten.linalg_vector_norm.default, (X, 0.0, [1], True), {}),
    (aten.linalg_vector_norm.default, (X, math.inf, [2]), {}),
    (aten.linalg_vector_norm.default, (X.half(), -math.inf, [1]), {}),
    (aten.linalg_vector_norm.default, (X, 3.5, [0, 1]), {}),
    (aten.linalg_vector_norm.default, (X, -1.5, [2]), {"dtype": torch.float64}),
    (aten.logsumexp.default, (X, [1]), {}),
    (aten.logsumexp.default, (TIES.masked_fill(TIES.isnan(), -math.inf), [-1], True), {}),
    (aten.logsumexp.default, (INTS, [0]), {}),
    (aten.any.default, (INTS > 3,), {}),
    (aten.any.dim, (X > 1.5, 1), {}),
    (aten.any.dims, (INTS.to(torch.uint8), [], True), {}),
    (aten.all.default, (torch.zeros(0, 2),), {}),
    (aten.all.dim, (STRIDED, -1, True), {}),
    (aten.all.dims, (X > -1.5, [0, 2]), {}),
]
CALLS = [c if len(c) == 3 else (*c, {}) for c in CALLS]
SMALL_TILES = dict(BLOCK_M=1, BLOCK_N=16, num_warps=1, num_stages=1, SPLIT=1)  # several tiles per row of more than 16


def run_and_compare(impl_name, genome, overload, args, kwargs):
    problem = REDUCTION.problem(overload, args, kwargs)
    impl = REDUCTION.implementation(impl_name)
    genome = genome or impl.genome_space.default()
    got = as_tuple(impl.build(problem, genome)(*args, **kwargs))
    want = as_tuple(overload(*args, **kwargs))
    for o, w in zip(got, want):
        assert (o.shape, o.dtype) == (w.shape, w.dtype)
    compare(REDUCTION, problem, got, REDUCTION.reference(problem, args), REDUCTION.reduced_extent(problem, args))


@pytest.mark.parametrize("overload,args,kwargs", CALLS, ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_triton_matches_reference(overload, args, kwargs):
    run_and_compare("reduction_triton", None, overload, args, kwargs)
    run_and_compare("reduction_triton", SMALL_TILES, overload, args, kwargs)


@pytest.mark.parametrize("overload,args,kwargs", CALLS, ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_decomposition_matches_reference(overload, args, kwargs):
    problem = REDUCTION.problem(overload, args, kwargs)
    for genome in REDUCTION.implementation("reduction_decomposition").genomes(problem):
        run_and_compare("reduction_decomposition", genome, overload, args, kwargs)


def test_keyword_only_arguments_are_remembered_by_the_problem():
    """A rewritten node passes positional arguments only: dtype, correction and keepdim come from the problem."""
    kwargs = {"correction": 0, "keepdim": True}
    problem = REDUCTION.problem(aten.var.correction, (X, [1]), kwargs)
    got = REDUCTION.implementation("reduction_triton").build(problem, SMALL_TILES)(X, [1])
    torch.testing.assert_close(got, aten.var.correction(X, [1], **kwargs))


@pytest.mark.parametrize("overload,args,kwargs", [
    (aten.sum.dim_IntList, (X, [1]), {}),
    (aten.argmin.default, (STRIDED.half(), 0), {}),
    (aten.std_mean.correction, (X.bfloat16(), [0, 1]), {}),
    (aten.prod.default, (INTS,), {}),
    (aten.logsumexp.default, (STRIDED, [2], True), {}),
    (aten.max.dim, (X.double(), 2), {}),
])
def test_generated_inputs(overload, args, kwargs):
    problem = REDUCTION.problem(overload, args, kwargs)
    for impl in REDUCTION.implementations:
        fn = impl.build(problem, impl.genome_space.default() if impl.supports(problem, impl.genome_space.default()) is None
                        else impl.genomes(problem)[0])
        check_kernel(REDUCTION, problem, fn, torch.device("cpu"), seeds=(0, 1), dists=DISTRIBUTIONS)


def test_problem_describes_rows():
    problem = REDUCTION.problem(aten.sum.dim_IntList, (STRIDED, [0, 2]), {})
    assert (problem.dim("rows"), problem.dim("row_length")) == (5, 24)
    assert not problem.contiguous and not problem.param("dims_last")
    assert REDUCTION.bytes_moved(problem) == 5 * 24 * 4 + 5 * 4
    assert family_for(aten.amax.default) is REDUCTION
    assert REDUCTION.checked_outputs(REDUCTION.problem(aten.var_mean.correction, (X,), {})) == (0, 1)
    assert REDUCTION.checked_outputs(REDUCTION.problem(aten.min.dim, (X, 1), {})) == (0, 1)


@pytest.mark.parametrize("overload,args,kwargs,reason", [
    (aten.sum.default, (torch.zeros(3, dtype=torch.complex64),), {}, "complex"),
    (aten.amax.default, (torch.zeros(3, 0), [1]), {}, "identity"),
    (aten.logsumexp.default, (X, []), {}, "empty dim list"),
    (aten.mean.default, (INTS,), {}, "floating-point"),
    (aten.sum.dim_IntList, (X, [3]), {}, "out of range"),
    (aten.sum.dim_IntList, (X, [1, -2]), {}, "repeats"),
    (aten.mm.default, (X[0], X[0].t()), {}, "not an overload"),
])
def test_unsupported_calls(overload, args, kwargs, reason):
    with pytest.raises(Unsupported, match=reason):
        REDUCTION.problem(overload, args, kwargs)


LONG = torch.randn(2, 5000, generator=g)
LONG_NANS = LONG.clone()  # a NaN at a chunk's first column (3840) for SPLIT=4 and 16.index_put_((torch.tensor([1, 1]), torch.tensor([3000, 3840])), torch.tensor(math.nan))
LONG_TIES = LONG.clone().index_fill_(1, torch.tensor([100, 4000]), 10.0).index_fill_(1, torch.tensor([7, 4900]), -10.0)
LONG_INTS = torch.randint(-3, 4, (2, 5000), generator=g, dtype=torch.int32)
POWERS = torch.tensor([1.0, -1.0, 2.0, 0.5])[torch.randint(0, 4, (2, 5000), generator=g)]  # exact products
SPLIT_CALLS = [
    (aten.sum.dim_IntList, (LONG, [1]), {}),
    (aten.sum.default, (LONG_INTS,), {}),
    (aten.sum.dim_IntList, (LONG_INTS > 0, [1]), {}),
    (aten.nansum.default, (LONG_NANS, [1]), {}),
    (aten.mean.default, (LONG,), {}),
    (aten.mean.dim, (LONG, [1], True), {}),
    (aten.prod.dim_int, (POWERS, 1), {}),
    (aten.prod.default, (LONG_INTS.clamp(-1, 1).masked_fill(LONG_INTS == 0, 1),), {}),
    (aten.amax.default, (LONG_NANS, [1]), {}),
    (aten.amin.default, (LONG_INTS.to(torch.int16), [1], True), {}),
    (aten.argmax.default, (LONG_TIES, 1), {}),
    (aten.argmax.default, (LONG_NANS, 1), {}),
    (aten.argmin.default, (LONG_TIES, -1, True), {}),
    (aten.argmin.default, (LONG_INTS, 1), {}),
    (aten.max.dim, (LONG_NANS, 1), {}),
    (aten.min.dim, (LONG_TIES, 1), {}),
    (aten.max.default, (LONG_NANS,), {}),
    (aten.min.default, (LONG,), {}),
    (aten.count_nonzero.default, (LONG.round(), 1)),
    (aten.count_nonzero.dim_IntList, (LONG_INTS, [0, 1])),
    (aten.any.default, (LONG > 3.5,), {}),
    (aten.any.dim, (LONG_INTS > 5, 1), {}),
    (aten.all.default, (LONG > -4.5,), {}),
    (aten.all.dims, ((LONG != LONG[0, 4999]).to(torch.uint8), [1]), {}),
    (aten.linalg_vector_norm.default, (LONG_NANS, math.inf, [1]), {}),
    (aten.linalg_vector_norm.default, (LONG, 3.5, [1]), {}),
]
SPLIT_CALLS = [c if len(c) == 3 else (*c, {}) for c in SPLIT_CALLS]
SPLIT_TILES = [dict(BLOCK_M=2, BLOCK_N=256, num_warps=1, num_stages=1, SPLIT=4),
               dict(BLOCK_M=1, BLOCK_N=64, num_warps=1, num_stages=1, SPLIT=16)]


@pytest.mark.parametrize("genome", SPLIT_TILES, ids=lambda g: f"SPLIT={g['SPLIT']}")
@pytest.mark.parametrize("overload,args,kwargs", SPLIT_CALLS,
                         ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_split_rows_match_reference(overload, args, kwargs, genome):
    problem = REDUCTION.problem(overload, args, kwargs)
    assert REDUCTION.implementation("reduction_triton").supports(problem, genome) is None
    chunk, chunks = triton_kernel.row_chunks(describe(overload, args, kwargs), problem.dim("rows"),
                                             problem.dim("row_length"), genome)
    assert 1 < chunks <= genome["SPLIT"] and chunk % genome["BLOCK_N"] == 0
    run_and_compare("reduction_triton", genome, overload, args, kwargs)


def test_default_splits_few_long_rows_only():
    """SPLIT 0 (the default) splits a full reduction of a [4096, 1024] tensor 1024 ways, leaves many rows and
    centered programs whole, and runs split (here 2 ways) through the kernel."""
    impl = REDUCTION.implementation("reduction_triton")
    big = torch.empty(4096, 1024, device="meta")
    for overload, args, split in [(aten.sum.default, (big,), 1024), (aten.sum.dim_IntList, (big, [1]), 1),
                                  (aten.var.correction, (big, None), 1)]:
        problem = REDUCTION.problem(overload, args, {})
        assert impl.default_genome(problem)["SPLIT"] == 0
        assert triton_kernel.auto_split(describe(overload, args, {}), problem.dim("rows"),
                                        problem.dim("row_length")) == split
    wide = LONG.repeat(1, 2)[:, :4096]
    assert triton_kernel.auto_split(describe(aten.sum.default, (wide,), {}), 1, wide.numel()) == 2
    run_and_compare("reduction_triton", None, aten.sum.default, (wide,), {})


@pytest.mark.parametrize("overload,args,reason", [
    (aten.var.correction, (LONG, [1]), "whole row"),
    (aten.logsumexp.default, (LONG, [1]), "whole row"),
    (aten.sum.dim_IntList, (LONG[:, :1000], [1]), "fewer than 4 tiles"),
])
def test_split_refused(overload, args, reason):
    problem = REDUCTION.problem(overload, args, {})
    assert reason in REDUCTION.implementation("reduction_triton").supports(problem, SPLIT_TILES[0])
