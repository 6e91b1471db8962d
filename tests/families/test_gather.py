"""The gather family: both implementations against ATen (float64 for the gradient) for index_select
along any dim (0-d, strided, empty index, repeats, ints and bools), embedding with any index shape,
and embedding_dense_backward with repeated rows and padding_idx."""
import pytest
import torch

from torch_kevolve.families import GATHER, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import check_kernel, compare

aten = torch.ops.aten
g = torch.Generator().manual_seed(0)
X = torch.randn(4, 7, 3, generator=g)
W = torch.randn(10, 6, generator=g)
IDX = torch.tensor([6, 0, 0, 3, 6])
ROWS = torch.randint(0, 10, (4, 5), generator=g)
ROWS[0, :3] = 2  # repeats of the padding row
GRAD = torch.randn(4, 5, 6, generator=g)
CALLS = [
    (aten.index_select.default, (X, 1, IDX)),
    (aten.index_select.default, (X.transpose(0, 2), -2, IDX[:3].int())),
    (aten.index_select.default, (X.half(), 0, torch.tensor([3]))),
    (aten.index_select.default, (X > 0, 2, torch.tensor([2, 2, 1]))),
    (aten.index_select.default, (torch.tensor(1.5), 0, torch.tensor(0))),
    (aten.index_select.default, (X.to(torch.int16), 1, IDX[:0])),
    (aten.embedding.default, (W, ROWS)),
    (aten.embedding.default, (W.bfloat16(), ROWS[0].int(), 2)),
    (aten.embedding_dense_backward.default, (GRAD, ROWS, 10, -1, False)),
    (aten.embedding_dense_backward.default, (GRAD.half(), ROWS, 10, 2, False)),
    (aten.embedding_dense_backward.default, (GRAD.double()[0], ROWS[0].int(), 12, 2, False)),
]
SMALL = dict(BLOCK=256, BLOCK_N=8, BLOCK_D=32, num_warps=1, num_stages=1)


def ids(value):
    return str(value) if isinstance(value, torch._ops.OpOverload) else ""


@pytest.mark.parametrize("overload,args", CALLS, ids=ids)
def test_implementations_match_reference(overload, args):
    problem = GATHER.problem(overload, args, {})
    want = GATHER.reference(problem, args)
    eager = overload(*args)
    triton_impl, decomposition = GATHER.implementation("gather_triton"), GATHER.implementation("gather_decomposition")
    runs = [(triton_impl, triton_impl.genome_space.default())]
    runs += [(decomposition, genome) for genome in decomposition.genomes(problem)]
    if overload == aten.embedding_dense_backward.default:
        runs.append((triton_impl, dict(triton_impl.genome_space.default(), BLOCK_N=8, BLOCK_D=32)))
    for impl, genome in runs:
        got = impl.build(problem, genome)(*args)
        assert (got.shape, got.dtype) == (eager.shape, eager.dtype)
        compare(GATHER, problem, (got,), want, GATHER.reduced_extent(problem, args))


@pytest.mark.parametrize("overload,args", [CALLS[1], CALLS[6], CALLS[9]], ids=ids)
def test_generated_inputs(overload, args):
    problem = GATHER.problem(overload, args, {})
    for impl in GATHER.implementations:
        fn = impl.build(problem, impl.genome_space.default())
        check_kernel(GATHER, problem, fn, torch.device("cpu"), seeds=(0, 1), dists=DISTRIBUTIONS)


def test_problem_and_registry():
    problem = GATHER.problem(aten.index_select.default, (X, 1, IDX), {})
    assert tuple(problem.dim(n) for n in ("outer", "length", "inner", "count")) == (4, 7, 3, 5)
    assert GATHER.implementation("gather_triton").supports(problem, SMALL) is not None
    assert family_for(aten.embedding_dense_backward.default) is GATHER


@pytest.mark.parametrize("overload,args,reason", [
    (aten.index_select.default, (X, 1, IDX.float()), "int32/int64"),
    (aten.index_select.default, (X, 1, IDX[None]), "0-d or 1-D"),
    (aten.embedding.default, (W[0], ROWS), "2-D weight"),
    (aten.embedding_dense_backward.default, (GRAD, ROWS, 10, -1, True), "scale_grad_by_freq"),
    (aten.embedding_dense_backward.default, (GRAD.int(), ROWS, 10, -1, False), "not supported"),
])
def test_unsupported_calls(overload, args, reason):
    with pytest.raises(Unsupported, match=reason):
        GATHER.problem(overload, args, {})
