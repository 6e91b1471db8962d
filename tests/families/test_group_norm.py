"""The group-norm family: both implementations against ATen in float64, forward (with and without
weight/bias, one group, one channel per group) and backward (every output mask, weight and bias gradients
summed over chunks of each channel's elements)."""
import pytest
import torch

from torch_kevolve.families import GROUP_NORM, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import check_kernel, compare
from torch_kevolve.families.group_norm import triton_kernel

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
SMALL_TILES = dict(BLOCK_M=2, BLOCK_N=16, num_warps=1, num_stages=1, PARAM_SPLIT=64)


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


X5 = torch.randn(5, 6, 7, generator=g)
SPLIT_CALLS = [  # each channel's 35 elements: with SPLIT_TILES, chunks of 16, 16 and 3 crossing batch boundaries
    (aten.native_group_norm_backward.default, backward_args(X5, W, 3, [True, True, True])),
    (aten.native_group_norm_backward.default, backward_args(X5.double(), W.double(), 3, [False, True, False])),
    (aten.native_group_norm_backward.default, backward_args(X5.half(), W.half(), 1, [False, False, True])),
    (aten.native_group_norm_backward.default, backward_args(X5.bfloat16(), W.bfloat16(), 6, [True, True, True])),
    (aten.native_group_norm_backward.default, backward_args(X5, W, 6, [True, True, False])),
]
SPLIT_TILES = dict(SMALL_TILES, PARAM_SPLIT=16)


def test_chunks_cover_each_channels_elements_in_whole_tiles():
    assert triton_kernel.row_chunks(35, SPLIT_TILES, "BLOCK_N") == (16, 3)
    assert triton_kernel.row_chunks(64 * 1024, dict(BLOCK_N=256, PARAM_SPLIT=64), "BLOCK_N") == (1024, 64)


@pytest.mark.parametrize("overload,args", SPLIT_CALLS, ids=ids)
@pytest.mark.parametrize("split", (1, 16))
def test_parameter_gradients_split_over_chunks(overload, args, split):
    problem = GROUP_NORM.problem(overload, args, {})
    got = GROUP_NORM.implementation("group_norm_triton").build(problem, dict(SPLIT_TILES, PARAM_SPLIT=split))(*args)
    compare(GROUP_NORM, problem, got, GROUP_NORM.reference(problem, args), GROUP_NORM.reduced_extent(problem, args))


def test_param_split_varies_only_where_parameter_gradients_are_summed():
    triton_impl = GROUP_NORM.implementation("group_norm_triton")
    assert any(g["PARAM_SPLIT"] != 64 for g in triton_impl.genomes(GROUP_NORM.problem(*SPLIT_CALLS[1][:2], {})))
    for overload, args in (CALLS[0], CALLS[5]):
        assert all(g["PARAM_SPLIT"] == 64 for g in triton_impl.genomes(GROUP_NORM.problem(overload, args, {})))


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


def test_zero_batch_backward_is_refused():
    with pytest.raises(Unsupported, match="empty"):
        empty, stats = X[:0], X[:0, :2, 0, 0]
        args = (empty, empty, stats, stats, W, 0, 6, 20, 2, [True, True, True])
        GROUP_NORM.problem(aten.native_group_norm_backward.default, args, {})
