"""The bucketize family: every implementation and search against ATen (exact integer output) for
bucketize and searchsorted, 1-D and batched boundaries, both sides, int32/int64 outputs, float, half
and integer dtypes (mixed ones promoted), ties, NaN and infinities, 0-d, empty and strided inputs."""
import math

import pytest
import torch

from torch_kevolve.families import BUCKETIZE, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import check_kernel, compare

aten = torch.ops.aten
g = torch.Generator().manual_seed(0)
B = torch.randn(20, generator=g).sort().values.repeat_interleave(2)  # every boundary twice: ties
X = torch.cat([torch.randn(60, generator=g), B[::3], torch.tensor([math.nan, math.inf, -math.inf])])
ROWS = torch.randn(3, 7, generator=g).sort(1).values
CALLS = [
    (aten.bucketize.Tensor, (X, B), {}),
    (aten.bucketize.Tensor, (X.reshape(7, 11), B), {"right": True}),
    (aten.bucketize.Tensor, (X.half(), B.half()), {"out_int32": True}),
    (aten.bucketize.Tensor, (X.bfloat16()[::2], B.bfloat16()), {"right": True}),
    (aten.bucketize.Tensor, (X.double(), B.double()[:3]), {}),
    (aten.bucketize.Tensor, (torch.tensor(0.25), B), {}),
    (aten.bucketize.Tensor, (X[:0], B), {}),
    (aten.bucketize.Tensor, (X, B[:0]), {"right": True}),
    (aten.bucketize.Tensor, (torch.tensor([16777217, 3, -4]), torch.tensor([-4.0, 3.0, 16777216.0])), {}),
    (aten.bucketize.Tensor, (torch.randint(-9, 9, (30,), generator=g).to(torch.int8), torch.arange(-6, 6, 2)),
     {"right": True}),
    (aten.bucketize.Tensor, (torch.arange(40, dtype=torch.uint8), torch.tensor([3, 3, 9, 200], dtype=torch.uint8)),
     {}),
    (aten.searchsorted.Tensor, (B, X), {}),
    (aten.searchsorted.Tensor, (B, X), {"side": "right"}),
    (aten.searchsorted.Tensor, (ROWS, torch.randn(3, 11, generator=g)), {"right": True, "out_int32": True}),
    (aten.searchsorted.Tensor, (ROWS.reshape(3, 1, 7).expand(3, 2, 7).contiguous(), torch.randn(3, 2, 5)), {}),
    (aten.searchsorted.Tensor, (ROWS.t().contiguous().t(), torch.randn(11, 3, generator=g).t()), {}),
    (aten.searchsorted.Tensor, (torch.arange(70, dtype=torch.int32), torch.randint(-5, 80, (4, 6), generator=g)),
     {"side": "left"}),
]
SMALL = dict(BLOCK=256, FANOUT=8, num_warps=1)


def ids(value):
    return str(value) if isinstance(value, torch._ops.OpOverload) else ""


def runs(problem):
    """Every search of the Triton kernel and every decomposition the problem supports."""
    triton_impl, decomposition = BUCKETIZE.implementation("bucketize_triton"), BUCKETIZE.implementation(
        "bucketize_decomposition")
    genomes = [(triton_impl, dict(SMALL, search=s)) for s in ("binary", "linear", "staged")]
    genomes += [(triton_impl, dict(SMALL, search="kary", FANOUT=f)) for f in (4, 8, 16)]
    genomes += [(decomposition, genome) for genome in decomposition.genome_space]
    return [(impl, genome) for impl, genome in genomes if impl.supports(problem, genome) is None]


@pytest.mark.parametrize("overload,args,kwargs", CALLS, ids=ids)
def test_implementations_match_reference(overload, args, kwargs):
    problem = BUCKETIZE.problem(overload, args, kwargs)
    want = BUCKETIZE.reference(problem, args)
    eager = overload(*args, **kwargs)
    assert torch.equal(want[0], eager)
    for impl, genome in runs(problem):
        got = impl.build(problem, genome)(*args)  # right and out_int32 remembered by the problem
        assert (got.shape, got.dtype) == (eager.shape, eager.dtype), (impl.name, genome)
        compare(BUCKETIZE, problem, (got,), want)


def test_every_search_runs_on_short_rows():
    problem = BUCKETIZE.problem(*CALLS[0][:2], {})
    assert {genome.get("search", genome.get("method")) for _, genome in runs(problem)} == {
        "binary", "linear", "staged", "kary", "halving", "compare"}


@pytest.mark.parametrize("overload,args,kwargs", [CALLS[1], CALLS[3], CALLS[9], CALLS[13], CALLS[15]], ids=ids)
def test_generated_inputs(overload, args, kwargs):
    problem = BUCKETIZE.problem(overload, args, kwargs)
    for impl, genome in runs(problem):
        check_kernel(BUCKETIZE, problem, impl.build(problem, genome), torch.device("cpu"), seeds=(0, 1),
                     dists=DISTRIBUTIONS)


def test_edge_inputs_hold_ties_nan_and_infinities():
    problem = BUCKETIZE.problem(*CALLS[0][:2], {})
    values, boundaries = BUCKETIZE.make_inputs(problem, 0, "edge", torch.device("cpu"))[:2]
    assert torch.isin(values, boundaries).sum() >= values.numel() // 3
    assert values.isnan().any() and values.isposinf().any() and values.isneginf().any()
    assert torch.equal(boundaries, boundaries.sort().values)


def test_problem_roofline_and_registry():
    problem = BUCKETIZE.problem(*CALLS[13])
    assert tuple(problem.dim(n) for n in ("rows", "per_row", "length")) == (3, 11, 7)
    assert problem.param("batched") and problem.param("right") and problem.param("out_int32")
    assert BUCKETIZE.bytes_moved(problem) == 33 * (4 + 4) + 21 * 4
    assert family_for(aten.bucketize.Tensor) is BUCKETIZE and family_for(aten.searchsorted.Tensor) is BUCKETIZE
    long_rows = BUCKETIZE.problem(aten.bucketize.Tensor, (X, torch.arange(100.0)), {})
    triton_impl = BUCKETIZE.implementation("bucketize_triton")
    assert "at most 64" in triton_impl.supports(long_rows, dict(SMALL, search="linear"))
    assert triton_impl.supports(long_rows, dict(SMALL, search="kary")) is None
    assert triton_impl.supports(problem, dict(BLOCK=4096, search="staged", FANOUT=8, num_warps=4)) is None
    assert "exceeds" in triton_impl.supports(BUCKETIZE.problem(aten.bucketize.Tensor, (X, torch.arange(60.0)), {}),
                                             dict(BLOCK=2048, search="staged", FANOUT=8, num_warps=4))
    assert "kary search only" in triton_impl.supports(problem, dict(SMALL, search="binary", FANOUT=4))
    assert "exceeds" in triton_impl.supports(long_rows, dict(BLOCK=1024, search="kary", FANOUT=16, num_warps=4))


def test_example_problems_cover_both_overloads_and_empty_values():
    for overload in BUCKETIZE.overloads:
        assert BUCKETIZE.example_problems(overload)
    assert any(p.dim("per_row") == 0 for p in BUCKETIZE.example_problems(aten.bucketize.Tensor))


@pytest.mark.parametrize("overload,args,kwargs,reason", [
    (aten.bucketize.Tensor, (X, B.reshape(2, 20)), {}, "N-d boundaries"),
    (aten.searchsorted.Tensor, (ROWS, torch.randn(2, 4)), {}, "same leading dims"),
    (aten.searchsorted.Tensor, (B, X), {"sorter": torch.arange(40)}, "sorter"),
    (aten.searchsorted.Tensor, (B, X), {"side": "left", "right": True}, "disagree"),
    (aten.bucketize.Tensor, (X > 0, B), {}, "bool"),
    (aten.bucketize.Tensor, (X.to(torch.complex64), B), {}, "complex"),
    (aten.bucketize.Tensor, (X, torch.tensor(1.0)), {}, "0-d boundaries"),
    (aten.cumsum.default, (X, 0), {}, "not an overload"),
])
def test_unsupported_calls(overload, args, kwargs, reason):
    with pytest.raises(Unsupported, match=reason):
        BUCKETIZE.problem(overload, args, kwargs)
