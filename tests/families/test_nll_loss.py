"""The nll_loss family: both implementations against ATen in float64 for every reduction, with and
without class weights, ignore_index hits (all rows ignored too), unbatched, strided and 2-d (image) inputs;
the sum/mean forward's rows split over several programs, the last one ragged."""
import pytest
import torch

from torch_kevolve.families import NLL_LOSS, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import check_kernel, compare
from torch_kevolve.families.nll_loss import calls, triton_kernel

aten = torch.ops.aten
g = torch.Generator().manual_seed(0)
X = torch.randn(70, 5, generator=g).log_softmax(1)
T = torch.randint(0, 5, (70,), generator=g)
T[::4] = -100
W = torch.rand(5, generator=g) + 0.5
IMAGE = torch.randn(2, 5, 3, 4, generator=g).log_softmax(1)
PIXELS = torch.randint(0, 5, (2, 3, 4), generator=g)
PIXELS[0, 0] = -100


def forward(x, target, weight, reduction, ignore_index=-100):
    return (x, target, weight, reduction, ignore_index)


def backward(x, target, weight, reduction, ignore_index=-100):
    forward = aten.nll_loss2d_forward if x.dim() == 4 else aten.nll_loss_forward
    _, total = forward(x, target, weight, reduction, ignore_index)
    grad = torch.randn(target.shape if reduction == 0 else (), generator=g).to(x.dtype)
    return (grad, x, target, weight, reduction, ignore_index, total)


CALLS = [
    (aten.nll_loss_forward.default, forward(X, T, None, 0)),
    (aten.nll_loss_forward.default, forward(X, T, W, 1)),
    (aten.nll_loss_forward.default, forward(X.t().contiguous().t().half(), T, W.half(), 2)),
    (aten.nll_loss_forward.default, forward(X.bfloat16(), T.clamp(min=0), None, 1, 2)),
    (aten.nll_loss_forward.default, forward(X.double(), torch.full((70,), 3), None, 1, 3)),  # all ignored: NaN
    (aten.nll_loss_forward.default, forward(X[0], T[1], W, 0)),
    (aten.nll_loss_forward.default, forward(X[:0], T[:0], None, 2)),
    (aten.nll_loss_backward.default, backward(X, T, None, 0)),
    (aten.nll_loss_backward.default, backward(X.double(), T, W.double(), 1)),
    (aten.nll_loss_backward.default, backward(X.half(), T.clamp(min=0), None, 2, 1)),
    (aten.nll_loss_backward.default, backward(X[0], T[1], W, 1)),
    (aten.nll_loss2d_forward.default, forward(IMAGE, PIXELS, None, 0)),
    (aten.nll_loss2d_forward.default, forward(IMAGE.transpose(2, 3).half(), PIXELS.transpose(1, 2), W.half(), 1)),
    (aten.nll_loss2d_backward.default, backward(IMAGE, PIXELS, W, 0)),
    (aten.nll_loss2d_backward.default, backward(IMAGE.double(), PIXELS, None, 1)),
]
SMALL = [dict(BLOCK=32, BLOCK_C=block_c, ROW_SPLIT=split, num_warps=1, num_stages=1)
         for block_c in (16, 64) for split in (256, 1, 32)]


def ids(value):
    return str(value) if isinstance(value, torch._ops.OpOverload) else ""


@pytest.mark.parametrize("overload,args", CALLS, ids=ids)
def test_implementations_match_reference(overload, args):
    problem = NLL_LOSS.problem(overload, args, {})
    want = NLL_LOSS.reference(problem, args)
    eager = overload(*args)
    eager = eager if isinstance(eager, tuple) else (eager,)
    triton_impl = NLL_LOSS.implementation("nll_loss_triton")
    runs = [("nll_loss_triton", triton_impl.genome_space.default())]
    runs += [("nll_loss_triton", small) for small in SMALL if triton_impl.supports(problem, small) is None]
    runs += [("nll_loss_decomposition", g) for g in NLL_LOSS.implementation("nll_loss_decomposition").genomes(problem)]
    for name, genome in runs:
        got = NLL_LOSS.implementation(name).build(problem, genome)(*args)
        got = got if isinstance(got, tuple) else (got,)
        assert [(o.shape, o.dtype) for o in got] == [(o.shape, o.dtype) for o in eager]
        compare(NLL_LOSS, problem, got, want, NLL_LOSS.reduced_extent(problem, args))


@pytest.mark.parametrize("overload,args", [CALLS[1], CALLS[2], CALLS[7], CALLS[8], CALLS[12], CALLS[13]], ids=ids)
def test_generated_inputs(overload, args):
    problem = NLL_LOSS.problem(overload, args, {})
    for impl in NLL_LOSS.implementations:
        fn = impl.build(problem, impl.genome_space.default())
        check_kernel(NLL_LOSS, problem, fn, torch.device("cpu"), seeds=(0, 1), dists=DISTRIBUTIONS)


def test_problem_and_registry():
    problem = NLL_LOSS.problem(*CALLS[1][:2], {})
    assert (problem.dim("batch"), problem.dim("classes"), problem.param("reduction")) == (70, 5, 1)
    image = NLL_LOSS.problem(*CALLS[11][:2], {})
    assert (image.dim("batch"), image.dim("classes"), image.dim("inner")) == (2, 5, 12)
    assert NLL_LOSS.checked_outputs(problem) == (0, 1)
    assert NLL_LOSS.checked_outputs(NLL_LOSS.problem(*CALLS[0][:2], {})) == (0,)
    assert family_for(aten.nll_loss_backward.default) is NLL_LOSS


@pytest.mark.parametrize("args,reason", [
    ((torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long), None, 1, -100), "target of shape"),
    ((X, T.float(), None, 1, -100), "integer class index"),
    ((X, T, W[:3], 1, -100), "weight"),
    ((X, T, None, 3, -100), "reduction"),
])
def test_unsupported_calls(args, reason):
    with pytest.raises(Unsupported, match=reason):
        NLL_LOSS.problem(aten.nll_loss_forward.default, args, {})


SPLIT_X = torch.randn(300, 7, generator=g).log_softmax(1)
SPLIT_T = torch.randint(0, 7, (300,), generator=g)
SPLIT_T[::5] = 2
SPLIT_W = torch.rand(7, generator=g) + 0.5
SPLIT_IMAGE = torch.randn(3, 7, 10, 10, generator=g).log_softmax(1)
SPLITS = [  # (forward overload, x, target, weight, reduction, ignore_index); 300 rows each
    (aten.nll_loss_forward.default, SPLIT_X, SPLIT_T, None, calls.MEAN, 2),
    (aten.nll_loss_forward.default, SPLIT_X.t().contiguous().t(), SPLIT_T, SPLIT_W, calls.SUM, 2),
    (aten.nll_loss_forward.default, SPLIT_X.double(), SPLIT_T, SPLIT_W.double(), calls.MEAN, -100),
    (aten.nll_loss_forward.default, SPLIT_X, torch.full((300,), 4), SPLIT_W, calls.MEAN, 4),  # all ignored: NaN
    (aten.nll_loss_forward.default, SPLIT_X.half(), torch.full((300,), 4), None, calls.SUM, 4),
    (aten.nll_loss2d_forward.default, SPLIT_IMAGE, SPLIT_T.view(3, 10, 10), SPLIT_W, calls.MEAN, 2),
    (aten.nll_loss2d_forward.default, SPLIT_IMAGE.double(), SPLIT_T.view(3, 10, 10), None, calls.SUM, 2),
]


@pytest.mark.parametrize("block,split,chunks", [(32, 4, (96, 96, 96, 12)), (16, 8, (48,) * 6 + (12,)),
                                                (32, 1, (300,)), (128, 256, (128, 128, 44))])
def test_row_split(block, split, chunks):
    rows_per_program, programs = triton_kernel.row_split(300, block, split)
    assert rows_per_program % block == 0
    assert [min(rows_per_program, 300 - p * rows_per_program) for p in range(programs)] == list(chunks)
    assert triton_kernel.row_split(0, block, split) == (block, 1)


@pytest.mark.parametrize("overload,x,target,weight,reduction,ignore_index", SPLITS, ids=ids)
@pytest.mark.parametrize("block,split", [(32, 4), (16, 8)])
def test_split_rows_match_float64_reference(overload, x, target, weight, reduction, ignore_index, block, split):
    """300 rows dealt to 4 (7) programs of 96 (48) rows, the last holding 12; loss and total weight as ATen's
    nll_loss in float64. ROW_SPLIT 4 and 8 lie below the genome space (which needs far more rows to split into
    runs of several blocks), so the launcher is called directly; the space's own values run in
    test_implementations_match_reference."""
    call, tensors = calls.describe(overload, (x, target, weight, reduction, ignore_index), {})
    genome = dict(BLOCK=block, BLOCK_C=64, ROW_SPLIT=split, num_warps=1, num_stages=1)
    loss, total = triton_kernel.nll_loss(tensors, call, genome)
    want_loss, want_total = overload(x.double(), target, None if weight is None else weight.double(), reduction,
                                     ignore_index)
    tolerance = dict(rtol=1e-3, atol=1e-2) if x.dtype == torch.half else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss.double(), want_loss, equal_nan=True, **tolerance)
    torch.testing.assert_close(total.double(), want_total, **tolerance)
    assert loss.dtype == total.dtype == x.dtype
