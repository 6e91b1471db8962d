"""The layer-norm family: both implementations against ATen in float64, forward (with and without
weight/bias, several normalized dims, strided, empty batch) and backward (every output mask), for
layer norm and fused RMS norm."""
import pytest
import torch

from torch_kevolve.families import LAYER_NORM, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import check_kernel, compare
from torch_kevolve.families.layer_norm import triton_kernel

aten = torch.ops.aten
g = torch.Generator().manual_seed(0)
X = torch.randn(3, 4, 20, generator=g)
W, B = torch.randn(20, generator=g), torch.randn(20, generator=g)
W2 = torch.randn(4, 20, generator=g)


def backward_args(x, shape, weight, bias, mask, eps=1e-5):
    _, mean, rstd = aten.native_layer_norm(x, shape, weight, bias, eps)
    grad = torch.randn(x.shape, generator=g).to(x.dtype)
    return (grad, x, shape, mean, rstd, weight, bias, mask)


def rms_backward_args(x, shape, weight, mask, eps=None):
    _, rstd = aten._fused_rms_norm(x.double(), shape, None, eps)
    grad = torch.randn(x.shape, generator=g).to(x.dtype)
    return (grad, x, shape, rstd.to(torch.float32 if x.dtype in (torch.half, torch.bfloat16) else x.dtype), weight, mask)


CALLS = [
    (aten.native_layer_norm.default, (X, [20], W, B, 1e-5)),
    (aten.native_layer_norm.default, (X.transpose(0, 1), [20], None, None, 1e-3)),
    (aten.native_layer_norm.default, (X.half(), [4, 20], W2.half(), None, 1e-5)),
    (aten.native_layer_norm.default, (X.bfloat16(), [20], None, B.bfloat16(), 1e-5)),
    (aten.native_layer_norm.default, (X.double(), [3, 4, 20], None, None, 0.0)),
    (aten.native_layer_norm.default, (torch.zeros(0, 20), [20], W, B, 1e-5)),
    (aten.native_layer_norm_backward.default, backward_args(X, [20], W, B, [True, True, True])),
    (aten.native_layer_norm_backward.default, backward_args(X.double(), [4, 20], W2.double(), None, [True, True, False])),
    (aten.native_layer_norm_backward.default, backward_args(X.transpose(0, 1), [20], None, None, [True, False, False])),
    (aten.native_layer_norm_backward.default, backward_args(X.half(), [20], W.half(), B.half(), [False, True, True])),
    (aten.native_layer_norm_backward.default, backward_args(torch.zeros(0, 20), [20], W, B, [True, True, True])),
    (aten._fused_rms_norm.default, (X, [20], W, 1e-6)),
    (aten._fused_rms_norm.default, (X.transpose(0, 1).half(), [3, 20], None, None)),
    (aten._fused_rms_norm.default, (X.double(), [20], W.double(), None)),
    (aten._fused_rms_norm_backward.default, rms_backward_args(X, [20], W, [True, True])),
    (aten._fused_rms_norm_backward.default, rms_backward_args(X.bfloat16(), [4, 20], None, [True, False])),
    (aten._fused_rms_norm_backward.default, rms_backward_args(X.double(), [20], W.double(), [False, True])),
]
SMALL_TILES = dict(BLOCK_M=2, BLOCK_N=16, num_warps=1, num_stages=1, PARAM_SPLIT=64)


def ids(value):
    return str(value) if isinstance(value, torch._ops.OpOverload) else ""


@pytest.mark.parametrize("overload,args", CALLS, ids=ids)
def test_implementations_match_reference(overload, args):
    problem = LAYER_NORM.problem(overload, args, {})
    want = LAYER_NORM.reference(problem, args)
    eager = want if overload == aten._fused_rms_norm_backward.default else overload(*args)  # no CPU kernel
    runs = [("layer_norm_triton", LAYER_NORM.implementation("layer_norm_triton").genome_space.default()),
            ("layer_norm_triton", SMALL_TILES)]
    runs += [("layer_norm_decomposition", g) for g in LAYER_NORM.implementation("layer_norm_decomposition").genomes(problem)]
    for name, genome in runs:
        got = LAYER_NORM.implementation(name).build(problem, genome)(*args)
        assert [None if o is None else o.shape for o in got] == [None if o is None else o.shape for o in eager]
        assert [None if o is None else o.dtype for o in got] == [None if o is None else o.dtype for o in eager] or (
            overload == aten._fused_rms_norm_backward.default)
        compare(LAYER_NORM, problem, got, want, LAYER_NORM.reduced_extent(problem, args))


@pytest.mark.parametrize("overload,args", [CALLS[1], CALLS[3], CALLS[6], CALLS[9], CALLS[12], CALLS[15]], ids=ids)
def test_generated_inputs(overload, args):
    problem = LAYER_NORM.problem(overload, args, {})
    for impl in LAYER_NORM.implementations:
        fn = impl.build(problem, impl.genomes(problem)[0])
        check_kernel(LAYER_NORM, problem, fn, torch.device("cpu"), seeds=(0,), dists=DISTRIBUTIONS)


X37 = torch.randn(37, 20, generator=g)
SPLIT_CALLS = [  # weight/bias gradients over 37 rows: with SPLIT_TILES, ten chunks of 4 rows, the last of 1
    (aten.native_layer_norm_backward.default, backward_args(X37, [20], W, B, [True, True, True])),
    (aten.native_layer_norm_backward.default, backward_args(X37, [20], W, B, [False, True, False])),
    (aten.native_layer_norm_backward.default, backward_args(X37.double(), [20], W.double(), None, [True, True, False])),
    (aten.native_layer_norm_backward.default, backward_args(X37.half(), [20], None, B.half(), [False, False, True])),
    (aten._fused_rms_norm_backward.default, rms_backward_args(X37, [20], W, [True, True])),
    (aten._fused_rms_norm_backward.default, rms_backward_args(X37.bfloat16(), [20], W.bfloat16(), [False, True])),
]
SPLIT_TILES = dict(SMALL_TILES, PARAM_SPLIT=16)


def test_row_chunks_cover_rows_in_whole_tiles():
    assert triton_kernel.row_chunks(37, SPLIT_TILES) == (4, 10)
    assert triton_kernel.row_chunks(4096, dict(BLOCK_M=4, PARAM_SPLIT=64)) == (64, 64)
    assert triton_kernel.row_chunks(0, SPLIT_TILES) == (2, 0)


@pytest.mark.parametrize("overload,args", SPLIT_CALLS, ids=ids)
@pytest.mark.parametrize("split", (1, 16))
def test_parameter_gradients_split_over_row_chunks(overload, args, split):
    problem = LAYER_NORM.problem(overload, args, {})
    got = LAYER_NORM.implementation("layer_norm_triton").build(problem, dict(SPLIT_TILES, PARAM_SPLIT=split))(*args)
    compare(LAYER_NORM, problem, got, LAYER_NORM.reference(problem, args), LAYER_NORM.reduced_extent(problem, args))


def test_param_split_varies_only_where_parameter_gradients_are_summed():
    triton_impl = LAYER_NORM.implementation("layer_norm_triton")
    param_problem = LAYER_NORM.problem(*SPLIT_CALLS[1][:2], {})
    assert any(g["PARAM_SPLIT"] != 64 for g in triton_impl.genomes(param_problem))
    for overload, args in (CALLS[0], CALLS[8]):
        assert all(g["PARAM_SPLIT"] == 64 for g in triton_impl.genomes(LAYER_NORM.problem(overload, args, {})))


def test_problem_and_registry():
    problem = LAYER_NORM.problem(*CALLS[2][:2], {})
    assert (problem.dim("rows"), problem.dim("row_length")) == (3, 80)
    assert problem.param("weight") and not problem.param("bias")
    assert LAYER_NORM.checked_outputs(LAYER_NORM.problem(*CALLS[9][:2], {})) == (1, 2)
    assert family_for(aten.native_layer_norm_backward.default) is LAYER_NORM


@pytest.mark.parametrize("args,reason", [
    ((X, [4], None, None, 1e-5), "suffix"),
    ((X, [20], W2, None, 1e-5), "weight shape"),
    ((X.to(torch.int32), [20], None, None, 1e-5), "floating-point"),
    ((torch.zeros(3, 0), [0], None, None, 1e-5), "zero elements"),
])
def test_unsupported_calls(args, reason):
    with pytest.raises(Unsupported, match=reason):
        LAYER_NORM.problem(aten.native_layer_norm.default, args, {})
