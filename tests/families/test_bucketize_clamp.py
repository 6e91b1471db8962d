"""The bucketize family's clamped bucket ids (kevolve::bucketize_clamp_offset): every implementation against eager
torch ops (searchsorted on a contiguous copy, minimum, add; exact int64) on transposed, sliced and contiguous
values, NaN, infinities, values equal to borders, +inf padded rows, lengths 0 and full, both sides, mixed and
integer dtypes, empty rows; generated inputs; the roofline; refused calls; the kernel compiled for sm_90."""
import math

import pytest
import torch

from tests.families.test_sm90_compile import captured_launches, compile_for_sm90
from torch_kevolve.families import BUCKETIZE, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.bucketize import clamp_kernel
from torch_kevolve.families.checking import check_kernel

OP = torch.ops.kevolve.bucketize_clamp_offset.default
g = torch.Generator().manual_seed(0)
ROWS, LENGTH = 5, 6
BORDERS = torch.randn(ROWS, LENGTH, generator=g).sort(1).values
LENGTHS = torch.tensor([[0], [6], [3], [1], [4]])
BORDERS[torch.arange(LENGTH) >= LENGTHS] = math.inf  # MBDT's padding past each row's borders
OFFSETS = torch.cumsum(LENGTHS + 1, 0) - (LENGTHS + 1)
X = torch.randn(19, ROWS, generator=g)  # [batch, features]: the op reads X.t()
X[:6] = BORDERS.t()  # values equal to borders, and +inf where rows are padded
X[6, :] = math.nan
X[7, :] = -math.inf
X[8, 1] = math.inf
SMALL = [dict(BLOCK_ROWS=8, BLOCK_COLS=32, search="binary", FANOUT=8, num_warps=1),
         dict(BLOCK_ROWS=16, BLOCK_COLS=64, search="binary", FANOUT=8, num_warps=2),
         dict(BLOCK_ROWS=8, BLOCK_COLS=32, search="kary", FANOUT=4, num_warps=1),
         dict(BLOCK_ROWS=16, BLOCK_COLS=32, search="kary", FANOUT=16, num_warps=2)]
CALLS = [  # (values, boundaries, lengths, offsets)
    (X.t(), BORDERS, LENGTHS, OFFSETS),
    (X.t().contiguous(), BORDERS, LENGTHS, OFFSETS),
    (torch.randn(ROWS, 40, generator=g)[:, ::3], BORDERS, LENGTHS, OFFSETS),
    (X.t().half(), BORDERS, LENGTHS, OFFSETS),
    (X.t().double(), BORDERS.double(), LENGTHS, OFFSETS.expand(ROWS, 1)),
    (torch.randint(-4, 8, (9, ROWS), generator=g).t(), torch.randint(-3, 6, (ROWS, LENGTH), generator=g).sort(1).values,
     LENGTHS, OFFSETS),
    (X.t()[:, :0], BORDERS, LENGTHS, OFFSETS),
    (X.t(), BORDERS[:, :0], torch.zeros(ROWS, 1, dtype=torch.int64), OFFSETS),
]


def eager(values, boundaries, lengths, offsets, right):
    """What MBDT computes, op by op."""
    return torch.minimum(torch.searchsorted(boundaries, values.contiguous(), right=right), lengths) + offsets


def runs(problem):
    """Small genomes of the Triton kernel and every decomposition the problem supports."""
    genomes = [(BUCKETIZE.implementation("bucketize_clamp_triton"), genome) for genome in SMALL]
    decomposition = BUCKETIZE.implementation("bucketize_decomposition")
    genomes += [(decomposition, genome) for genome in decomposition.genome_space]
    return [(impl, genome) for impl, genome in genomes if impl.supports(problem, genome) is None]


@pytest.mark.parametrize("right", [False, True])
@pytest.mark.parametrize("index", range(len(CALLS)))
def test_implementations_match_eager(poisoned_allocations, index, right):
    args = (*CALLS[index], right)
    want = eager(*args)
    op_out = OP(*args)
    assert torch.equal(op_out, want) and op_out.is_contiguous()
    problem = BUCKETIZE.problem(OP, args, {})
    assert torch.equal(BUCKETIZE.reference(problem, args)[0], want)
    kernels = runs(problem)
    assert {impl.name for impl, _ in kernels} == {"bucketize_clamp_triton", "bucketize_decomposition"}
    for impl, genome in kernels:
        got = impl.build(problem, genome)(*args)
        assert got.dtype == torch.int64 and got.is_contiguous(), (impl.name, genome)
        assert torch.equal(got, want), (impl.name, genome)


@pytest.mark.parametrize("example", range(2))
def test_generated_inputs(example):
    problem = BUCKETIZE.example_problems(OP)[example]
    for impl, genome in runs(problem):
        check_kernel(BUCKETIZE, problem, impl.build(problem, genome), torch.device("cpu"), seeds=(0, 1),
                     dists=DISTRIBUTIONS)


def test_edge_inputs_are_mbdt_like():
    problem = BUCKETIZE.example_problems(OP)[0]
    values, boundaries, lengths, offsets, right = BUCKETIZE.make_inputs(problem, 0, "edge", torch.device("cpu"))
    assert not values.is_contiguous() and values.isnan().any() and values.isinf().any()
    assert lengths.min() == 0 and lengths.max() == boundaries.shape[1] and lengths.shape == (problem.dim("rows"), 1)
    assert torch.equal(boundaries.isinf(), torch.arange(boundaries.shape[1]) >= lengths)
    assert torch.equal(offsets[1:], (offsets + lengths + 1)[:-1])


def test_problem_roofline_and_registry():
    problem = BUCKETIZE.problem(OP, (*CALLS[0], False), {})
    assert problem.op == "kevolve.bucketize_clamp_offset.default" and not problem.contiguous
    assert tuple(problem.dim(n) for n in ("rows", "per_row", "length")) == (ROWS, 19, LENGTH)
    assert BUCKETIZE.bytes_moved(problem) == ROWS * 19 * (4 + 8) + ROWS * LENGTH * 4 + 2 * ROWS * 8
    assert family_for(OP) is BUCKETIZE
    searchsorted = BUCKETIZE.problem(torch.ops.aten.searchsorted.Tensor, (BORDERS, X.t()), {})
    assert BUCKETIZE.implementation("bucketize_clamp_triton").supports(searchsorted, SMALL[0])
    clamp_triton = BUCKETIZE.implementation("bucketize_clamp_triton")
    assert "kary search only" in clamp_triton.supports(problem, dict(SMALL[0], FANOUT=4))
    assert "exceeds" in clamp_triton.supports(problem, dict(SMALL[3], BLOCK_COLS=256))
    assert BUCKETIZE.implementation("bucketize_triton").supports(problem, dict(BLOCK=256, search="binary",
                                                                               FANOUT=8, num_warps=1))


@pytest.mark.parametrize("args,reason", [
    ((X.t(), BORDERS, LENGTHS.int(), OFFSETS, False), "lengths must be an int64"),
    ((X.t(), BORDERS, LENGTHS, OFFSETS.reshape(1, ROWS), False), "offsets must be an int64"),
    ((X.t(), BORDERS[0], LENGTHS, OFFSETS, False), "2-D values and boundaries"),
    ((X.t()[:2], BORDERS, LENGTHS, OFFSETS, False), "same leading dims"),
    ((X.t() > 0, BORDERS, LENGTHS, OFFSETS, False), "bool"),
])
def test_unsupported_calls(args, reason):
    with pytest.raises(Unsupported, match=reason):
        BUCKETIZE.problem(OP, args, {})


@pytest.mark.parametrize("values,boundaries,genome", [
    (torch.zeros(300, 40).t(), torch.zeros(40, 33), dict(BLOCK_ROWS=32, BLOCK_COLS=32, search="binary", FANOUT=8,
                                                         num_warps=4)),
    (torch.zeros(40, 300, dtype=torch.bfloat16), torch.zeros(40, 9, dtype=torch.bfloat16),
     dict(BLOCK_ROWS=8, BLOCK_COLS=256, search="binary", FANOUT=8, num_warps=8)),
    (torch.zeros(300, 40, dtype=torch.int64).t(), torch.zeros(40, 64, dtype=torch.int64),
     dict(BLOCK_ROWS=64, BLOCK_COLS=64, search="binary", FANOUT=8, num_warps=2)),
    (torch.zeros(300, 40).t(), torch.zeros(40, 33), dict(BLOCK_ROWS=16, BLOCK_COLS=64, search="kary", FANOUT=8,
                                                         num_warps=4)),
    (torch.zeros(40, 300, dtype=torch.bfloat16), torch.zeros(40, 9, dtype=torch.bfloat16),
     dict(BLOCK_ROWS=8, BLOCK_COLS=64, search="kary", FANOUT=16, num_warps=2)),
])
def test_kernel_compiles_for_sm90(monkeypatch, values, boundaries, genome):
    captured = captured_launches(monkeypatch, clamp_kernel)
    column = torch.zeros(40, 1, dtype=torch.int64)
    args = (values, boundaries, column, column, True)
    BUCKETIZE.implementation("bucketize_clamp_triton").build(BUCKETIZE.problem(OP, args, {}), genome)(*args)
    (launch,) = captured
    assert launch[0].fn.__name__ == "clamped_buckets_kernel"
    compiled = compile_for_sm90(*launch)
    assert compiled.asm["cubin"] and ".target sm_90" in compiled.asm["ptx"]
