"""The batch-norm family: both implementations against ATen in float64 for inference, training
(batch statistics, functional running-stat updates) and backward (both modes, every output mask)."""
import pytest
import torch

from torch_kevolve.families import BATCH_NORM, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import check_kernel, compare

aten = torch.ops.aten
g = torch.Generator().manual_seed(0)
X = torch.randn(4, 3, 5, 6, generator=g)
CHANNELS_LAST = X.contiguous(memory_format=torch.channels_last)
W, B = torch.randn(3, generator=g), torch.randn(3, generator=g)
RM, RV = torch.randn(3, generator=g), torch.rand(3, generator=g) + 0.5


def backward_args(x, weight, training, mask, eps=1e-5):
    running = (None, None) if training else (RM.to(x.dtype), RV.to(x.dtype))
    _, save_mean, save_invstd = aten.native_batch_norm(x, weight, None, *running, training, 0.1, eps)
    grad = torch.randn(x.shape, generator=g).to(x.dtype)
    return (grad, x, weight, *running, save_mean, save_invstd, training, eps, mask)


CALLS = [
    (aten.native_batch_norm.default, (X, W, B, RM, RV, False, 0.1, 1e-5)),
    (aten.native_batch_norm.default, (CHANNELS_LAST, None, None, None, None, True, 0.1, 1e-3)),
    (aten.native_batch_norm.default, (X[:, :, 0, 0].double(), W.double(), None, None, None, True, 0.1, 1e-5)),
    (aten._native_batch_norm_legit_no_training.default, (X, None, B, RM, RV, 0.1, 1e-5)),
    (aten._native_batch_norm_legit_functional.default, (X, W, B, RM, RV, True, 0.1, 1e-5)),
    (aten._native_batch_norm_legit_functional.default, (X[:1, :, :1, :1], None, None, RM, RV, True, 0.3, 1e-5)),
    (aten.native_batch_norm_backward.default, backward_args(X, W, True, [True, True, True])),
    (aten.native_batch_norm_backward.default, backward_args(CHANNELS_LAST, None, True, [True, False, True])),
    (aten.native_batch_norm_backward.default, backward_args(X.double(), W.double(), False, [True, True, False])),
    (aten.native_batch_norm_backward.default, backward_args(X[:, :, 0], W, True, [False, True, True])),
]
SMALL = dict(BLOCK=64, num_warps=1, num_stages=1)


def ids(value):
    return str(value) if isinstance(value, torch._ops.OpOverload) else ""


@pytest.mark.parametrize("overload,args", CALLS, ids=ids)
def test_implementations_match_reference(overload, args):
    problem = BATCH_NORM.problem(overload, args, {})
    want = BATCH_NORM.reference(problem, args)
    eager = overload(*args)
    runs = [("batch_norm_triton", BATCH_NORM.implementation("batch_norm_triton").genome_space.default()),
            ("batch_norm_triton", SMALL)]
    runs += [("batch_norm_decomposition", g) for g in BATCH_NORM.implementation("batch_norm_decomposition").genomes(problem)]
    for name, genome in runs:
        got = BATCH_NORM.implementation(name).build(problem, genome)(*args)
        assert [None if o is None else (o.shape, o.dtype) for o in got] == [
            None if o is None else (o.shape, o.dtype) for o in eager]
        compare(BATCH_NORM, problem, got, want, BATCH_NORM.reduced_extent(problem, args))


@pytest.mark.parametrize("overload,args", [CALLS[0], CALLS[1], CALLS[4], CALLS[6], CALLS[8]], ids=ids)
def test_generated_inputs(overload, args):
    problem = BATCH_NORM.problem(overload, args, {})
    for impl in BATCH_NORM.implementations:
        fn = impl.build(problem, impl.genomes(problem)[0])
        check_kernel(BATCH_NORM, problem, fn, torch.device("cpu"), seeds=(0,), dists=DISTRIBUTIONS)


def test_problem_and_registry():
    problem = BATCH_NORM.problem(*CALLS[1][:2], {})
    assert (problem.dim("batch"), problem.dim("channels"), problem.dim("inner")) == (4, 3, 30)
    assert problem.param("training") and not problem.contiguous
    assert BATCH_NORM.checked_outputs(BATCH_NORM.problem(*CALLS[4][:2], {})) == (0, 1, 2, 3, 4)
    assert BATCH_NORM.checked_outputs(BATCH_NORM.problem(*CALLS[0][:2], {})) == (0,)
    assert family_for(aten.native_batch_norm_backward.default) is BATCH_NORM


@pytest.mark.parametrize("args,reason", [
    ((X, W, B, RM, RV, True, 0.1, 1e-5), "in place"),
    ((X.half(), None, None, None, None, True, 0.1, 1e-5), "float32/float64"),
    ((X, None, None, None, None, False, 0.1, 1e-5), "running_mean"),
    ((X, W[:2], None, None, None, True, 0.1, 1e-5), "one entry per channel"),
])
def test_unsupported_calls(args, reason):
    with pytest.raises(Unsupported, match=reason):
        BATCH_NORM.problem(aten.native_batch_norm.default, args, {})
