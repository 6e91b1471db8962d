"""The scan family: both implementations against ATen in float64 along any dim (negative, 0-d,
strided, empty, multi-tile rows), integer and bool inputs, output dtypes, zeros in products."""
import pytest
import torch

from torch_kevolve.families import SCAN, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import check_kernel, compare

aten = torch.ops.aten
g = torch.Generator().manual_seed(0)
X = torch.randn(3, 40, 5, generator=g)
P = (torch.rand(3, 40, 5, generator=g) + 0.5).masked_fill(torch.rand(3, 40, 5, generator=g) < 0.05, 0.0)
INTS = torch.randint(-3, 4, (6, 9), generator=g)
CALLS = [
    (aten.cumsum.default, (X, 1), {}),
    (aten.cumsum.default, (X.transpose(0, 1).half(), -1), {}),
    (aten.cumsum.default, (X.bfloat16(), 0), {"dtype": torch.float64}),
    (aten.cumsum.default, (INTS.int(), 1), {}),
    (aten.cumsum.default, (INTS > 0, 0), {}),
    (aten.cumsum.default, (torch.tensor(2.5), 0), {}),
    (aten.cumsum.default, (torch.zeros(0, 4), 1), {}),
    (aten.cumprod.default, (P, 1), {}),
    (aten.cumprod.default, (P.double().transpose(1, 2), 2), {}),
    (aten.cumprod.default, (INTS, -1), {}),
    (aten.cumprod.default, (INTS.to(torch.uint8), 0), {"dtype": torch.float32}),
]
SMALL_TILES = dict(BLOCK_M=2, BLOCK_N=16, num_warps=1, num_stages=1)  # rows of 40 take three tiles


def ids(value):
    return str(value) if isinstance(value, torch._ops.OpOverload) else ""


@pytest.mark.parametrize("overload,args,kwargs", CALLS, ids=ids)
def test_implementations_match_reference(overload, args, kwargs):
    problem = SCAN.problem(overload, args, kwargs)
    want = SCAN.reference(problem, args)
    eager = overload(*args, **kwargs)
    runs = [("scan_triton", SCAN.implementation("scan_triton").genome_space.default()), ("scan_triton", SMALL_TILES),
            ("scan_decomposition", SCAN.implementation("scan_decomposition").genome_space.default())]
    for name, genome in runs:
        got = SCAN.implementation(name).build(problem, genome)(*args)  # dtype remembered by the problem
        assert (got.shape, got.dtype) == (eager.shape, eager.dtype)
        compare(SCAN, problem, (got,), want, SCAN.reduced_extent(problem, args))


@pytest.mark.parametrize("overload,args,kwargs", [CALLS[1], CALLS[3], CALLS[7], CALLS[8]], ids=ids)
def test_generated_inputs(overload, args, kwargs):
    problem = SCAN.problem(overload, args, kwargs)
    for impl in SCAN.implementations:
        fn = impl.build(problem, impl.genomes(problem)[0])
        check_kernel(SCAN, problem, fn, torch.device("cpu"), seeds=(0, 1), dists=DISTRIBUTIONS)


def test_problem_and_registry():
    problem = SCAN.problem(aten.cumsum.default, (X, 1), {})
    assert (problem.dim("rows"), problem.dim("row_length"), problem.param("dim_last")) == (15, 40, False)
    assert SCAN.bytes_moved(problem) == 600 * 8
    assert family_for(aten.cumprod.default) is SCAN


@pytest.mark.parametrize("args,kwargs,reason", [
    ((X.to(torch.complex64), 0), {}, "complex"),
    ((X, 3), {}, "out of range"),
    ((X, 0), {"dtype": torch.bool}, "output dtype"),
])
def test_unsupported_calls(args, kwargs, reason):
    with pytest.raises(Unsupported, match=reason):
        SCAN.problem(aten.cumsum.default, args, kwargs)
