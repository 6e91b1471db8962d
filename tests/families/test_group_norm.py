"""The group-norm family: both implementations against ATen in float64, forward (with and without
weight/bias, one group, one channel per group) and backward (every output mask)."""
import pytest
import torch

from torch_kevolve.families import GROUP_NORM, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import check_kernel, compare

aten = torch.ops.aten
g = torch.Generator().manual_seed(0)
X = torch.randn(3, 6, 4, 5, generator=g)
W, B = torch.randn(6, generator=g), torch.randn(6, generator=g)


def backward_args(x, weight, groups, mask, eps=1e-5):
    n, c = x.shape[:2]
    hw = x[0, 0].numel()
    _, mean, rstd = aten.native_group_norm(x, weight, None, n, c, hw, groups, eps)
    grad = torch.randn(x.shape, generator=g).to(x.dtype)
    return (grad, x, mean, rstd, weight, n, c, hw, groups, mask)


CALLS = [
    (aten.native_group_norm.default, (X, W, B, 3, 6, 20, 2, 1e-5)),
    (aten.native_group_norm.default, (X, None, None, 3, 6, 20, 1, 1e-3)),
    (aten.native_group_norm.default, (X.double(), W.double(), None, 3, 6, 20, 6, 1e-5)),
    (aten.native_group_norm.default, (X[:, :, 0, 0].bfloat16(), None, B.bfloat16(), 3, 6, 1, 3, 1e-5)),
    (aten.native_group_norm_backward.default, backward_args(X, W, 2, [True, True, True])),
    (aten.native_group_norm_backward.default, backward_args(X.double(), None, 3, [True, False, False])),
    (aten.native_group_norm_backward.default, backward_args(X.half(), W.half(), 6, [False, True, True])),
]
SMALL_TILES = dict(BLOCK_M=2, BLOCK_N=16, num_warps=1, num_stages=1)


def ids(value):
    return str(value) if isinstance(value, torch._ops.OpOverload) else ""


@pytest.mark.parametrize("overload,args", CALLS, ids=ids)
def test_implementations_match_reference(overload, args):
    problem = GROUP_NORM.problem(overload, args, {})
    want = GROUP_NORM.reference(problem, args)
    eager = overload(*args)
    runs = [("group_norm_triton", GROUP_NORM.implementation("group_norm_triton").genome_space.default()),
            ("group_norm_triton", SMALL_TILES)]
    runs += [("group_norm_decomposition", g) for g in GROUP_NORM.implementation("group_norm_decomposition").genomes(problem)]
    for name, genome in runs:
        got = GROUP_NORM.implementation(name).build(problem, genome)(*args)
        assert [None if o is None else (o.shape, o.dtype) for o in got] == [
            None if o is None else (o.shape, o.dtype) for o in eager]
        compare(GROUP_NORM, problem, got, want, GROUP_NORM.reduced_extent(problem, args))


@pytest.mark.parametrize("overload,args", [CALLS[0], CALLS[1], CALLS[4], CALLS[5]], ids=ids)
def test_generated_inputs(overload, args):
    problem = GROUP_NORM.problem(overload, args, {})
    for impl in GROUP_NORM.implementations:
        fn = impl.build(problem, impl.genomes(problem)[0])
        check_kernel(GROUP_NORM, problem, fn, torch.device("cpu"), seeds=(0,), dists=DISTRIBUTIONS)


def test_problem_and_registry():
    problem = GROUP_NORM.problem(*CALLS[0][:2], {})
    assert (problem.dim("batch"), problem.dim("channels"), problem.dim("inner"), problem.dim("row_length")) == (3, 6, 20, 60)
    assert GROUP_NORM.checked_outputs(GROUP_NORM.problem(*CALLS[6][:2], {})) == (1, 2)
    assert family_for(aten.native_group_norm_backward.default) is GROUP_NORM


@pytest.mark.parametrize("args,reason", [
    ((X, None, None, 3, 6, 20, 4, 1e-5), "groups"),
    ((X, W[:3], None, 3, 6, 20, 2, 1e-5), "one entry per channel"),
    ((X, None, None, 3, 6, 10, 2, 1e-5), "is not"),
    ((X[:0], None, None, 0, 6, 20, 2, 1e-5), "empty"),
    ((X.transpose(2, 3), None, None, 3, 6, 20, 2, 1e-5), "contiguous"),
])
def test_unsupported_calls(args, reason):
    with pytest.raises(Unsupported, match=reason):
        GROUP_NORM.problem(aten.native_group_norm.default, args, {})
