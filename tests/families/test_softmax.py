"""The softmax family: both implementations against ATen in float64 along any dim (negative, 0-d,
strided, empty, rows of -inf), forward and backward, the generated inputs, and the refused calls."""
import pytest
import torch

from torch_kevolve.families import SOFTMAX, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import check_kernel, compare

aten = torch.ops.aten
g = torch.Generator().manual_seed(0)
X = torch.randn(3, 20, 5, generator=g)
STRIDED = X.transpose(0, 1)
WITH_INF = X.clone()
WITH_INF[0, :, 0] = -float("inf")  # a row of -inf (NaN, as in ATen) and a row partly -inf
WITH_INF[1, :7, 1] = -float("inf")
Y = torch.softmax(X.double(), 1)
GRAD = torch.randn(3, 20, 5, generator=g, dtype=torch.float64)
CALLS = [
    (aten._softmax.default, (X, 1, False)),
    (aten._softmax.default, (STRIDED.half(), -1, False)),
    (aten._softmax.default, (WITH_INF, 1, False)),
    (aten._softmax.default, (torch.tensor(1.5), 0, False)),
    (aten._softmax.default, (torch.zeros(0, 4), 1, False)),
    (aten._softmax.default, (X.half(), 0, True)),
    (aten._log_softmax.default, (X.bfloat16(), -2, False)),
    (aten._log_softmax.default, (WITH_INF.double(), 1, False)),
    (aten._log_softmax.default, (STRIDED, 0, False)),
    (aten._softmax_backward_data.default, (GRAD, Y, 1, torch.float64)),
    (aten._softmax_backward_data.default, (GRAD.float().transpose(0, 2), Y.float().transpose(0, 2), 1, torch.float16)),
    (aten._log_softmax_backward_data.default, (GRAD.half(), Y.log().half(), -2, torch.float16)),
    (aten._log_softmax_backward_data.default, (GRAD.float()[:, :, 0], Y.log().float()[:, :, 0], 0, torch.float32)),
    (aten._safe_softmax.default, (WITH_INF, 1)),
    (aten._safe_softmax.default, (WITH_INF.transpose(1, 2).half(), -1, torch.float32)),
]
SMALL_TILES = dict(BLOCK_M=2, BLOCK_N=16, num_warps=1, num_stages=1)  # rows of 20 take two tiles


def expected_dtype(overload, args):
    """The output dtype ATen gives (its CPU kernels refuse some of these mixed-dtype calls)."""
    if overload == aten._safe_softmax.default:
        return args[2] if len(args) > 2 else args[0].dtype
    if overload in (aten._softmax.default, aten._log_softmax.default):
        return torch.float32 if args[2] else args[0].dtype
    return args[3]


def ids(value):
    return str(value) if isinstance(value, torch._ops.OpOverload) else ""


@pytest.mark.parametrize("overload,args", CALLS, ids=ids)
def test_implementations_match_reference(overload, args):
    problem = SOFTMAX.problem(overload, args, {})
    want = SOFTMAX.reference(problem, args)
    runs = [("softmax_triton", SOFTMAX.implementation("softmax_triton").genome_space.default()),
            ("softmax_triton", SMALL_TILES)]
    runs += [("softmax_decomposition", g) for g in SOFTMAX.implementation("softmax_decomposition").genomes(problem)]
    for name, genome in runs:
        got = SOFTMAX.implementation(name).build(problem, genome)(*args)
        assert (got.shape, got.dtype) == (args[0].shape, expected_dtype(overload, args))
        compare(SOFTMAX, problem, (got,), want, SOFTMAX.reduced_extent(problem, args))


@pytest.mark.parametrize("overload,args", [CALLS[1], CALLS[6], CALLS[10], CALLS[12], CALLS[14]], ids=ids)
def test_generated_inputs(overload, args):
    problem = SOFTMAX.problem(overload, args, {})
    for impl in SOFTMAX.implementations:
        fn = impl.build(problem, impl.genomes(problem)[0])
        check_kernel(SOFTMAX, problem, fn, torch.device("cpu"), seeds=(0, 1), dists=DISTRIBUTIONS)


def test_problem_and_registry():
    problem = SOFTMAX.problem(aten._softmax.default, (STRIDED, 0, False), {})
    assert (problem.dim("rows"), problem.dim("row_length"), problem.param("dim_last")) == (15, 20, False)
    assert not problem.contiguous
    assert SOFTMAX.bytes_moved(problem) == 300 * 8
    assert family_for(aten._log_softmax_backward_data.default) is SOFTMAX


@pytest.mark.parametrize("overload,args,reason", [
    (aten._softmax.default, (X.to(torch.complex64), 1, False), "floating-point"),
    (aten._softmax.default, (X, 3, False), "out of range"),
    (aten._softmax_backward_data.default, (GRAD, Y[:1], 1, torch.float64), "shape"),
    (aten.sum.default, (X,), "not an overload"),
])
def test_unsupported_calls(overload, args, reason):
    with pytest.raises(Unsupported, match=reason):
        SOFTMAX.problem(overload, args, {})
