"""The factorization-machine family: both Triton algorithms and both decompositions against the float64
reference, forward and backward, for every float dtype, shared and per-sample projections, N, D, K not powers
of two, strided operands and an empty batch, on generated inputs of every distribution; the calls it refuses."""
import pytest
import torch

from torch_kevolve.families import FM_INTERACTION, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import RTOL, check_kernel, compare
from torch_kevolve.families.fm_interaction.calls import FM_INTERACTION as FORWARD
from torch_kevolve.families.fm_interaction.calls import FM_INTERACTION_BACKWARD as BACKWARD

g = torch.Generator().manual_seed(0)
X = torch.randn(3, 6, 20, generator=g)
Y = torch.randn(6, 5, generator=g)
Y_PER_SAMPLE = torch.randn(3, 6, 5, generator=g)
GRAD = torch.randn(3, 6, 5, generator=g)


def strided(t):
    """`t`'s values, laid out with its last two dims swapped."""
    return t.transpose(-1, -2).contiguous().transpose(-1, -2)


CALLS = [
    (FORWARD, (X, Y)),
    (FORWARD, (X, Y_PER_SAMPLE)),
    (FORWARD, (X.half(), Y.half())),
    (FORWARD, (strided(X).bfloat16(), strided(Y_PER_SAMPLE).bfloat16())),
    (FORWARD, (X.double(), Y.double())),
    (FORWARD, (X[:0], Y)),
    (BACKWARD, (GRAD, X, Y)),
    (BACKWARD, (GRAD, X, Y_PER_SAMPLE)),
    (BACKWARD, (GRAD.bfloat16(), X.bfloat16(), Y.bfloat16())),
    (BACKWARD, (strided(GRAD).half(), X.half(), strided(Y_PER_SAMPLE).half())),
    (BACKWARD, (GRAD.double(), X.double(), Y_PER_SAMPLE.double())),
    (BACKWARD, (GRAD[:0], X[:0], Y)),
]
SMALL = dict(BLOCK_D=16, num_warps=1, num_stages=1)  # D = 20 in two column blocks


def ids(value):
    return str(value) if isinstance(value, torch._ops.OpOverload) else ""


def runs(problem):
    """(implementation, genome): each Triton algorithm with small blocks where supported, every decomposition."""
    triton_impl, decomposition = FM_INTERACTION.implementations
    out = [(triton_impl, dict(SMALL, algorithm=a)) for a in ("project", "gram")]
    out = [(i, genome) for i, genome in out if i.supports(problem, genome) is None]
    return out + [(decomposition, genome) for genome in decomposition.genomes(problem)]


def as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("overload,args", CALLS, ids=ids)
def test_implementations_match_reference(overload, args, poisoned_allocations):
    problem = FM_INTERACTION.problem(overload, args, {})
    want = FM_INTERACTION.reference(problem, args)
    eager = as_tuple(overload(*args))
    assert len(runs(problem)) == (2 if problem.dtype("features") == torch.float64 else 4)
    for impl, genome in runs(problem):
        got = as_tuple(impl.build(problem, genome)(*args))
        assert [(t.shape, t.dtype) for t in got] == [(t.shape, t.dtype) for t in eager], (impl.name, genome)
        compare(FM_INTERACTION, problem, got, want, FM_INTERACTION.reduced_extent(problem, args))


@pytest.mark.parametrize("overload,args", [c for c in CALLS if c[1][0].dtype in (torch.float16, torch.bfloat16)],
                         ids=ids)
def test_half_precision_kernels_are_as_close_as_rounding_allows(overload, args):
    """Tighter than the extent-scaled tolerance: the whole output within a few roundings of its dtype."""
    problem = FM_INTERACTION.problem(overload, args, {})
    want = FM_INTERACTION.reference(problem, args)
    for impl, genome in runs(problem)[:2]:
        for got, w in zip(as_tuple(impl.build(problem, genome)(*args)), want):
            assert (got.double() - w).norm() <= 2 * RTOL[got.dtype] * w.norm(), (impl.name, genome)


@pytest.mark.parametrize("overload", [FORWARD, BACKWARD], ids=str)
def test_generated_inputs(overload):
    for problem in FM_INTERACTION.example_problems(overload):
        for impl, genome in runs(problem):
            check_kernel(FM_INTERACTION, problem, impl.build(problem, genome), torch.device("cpu"), seeds=(0, 1),
                         dists=DISTRIBUTIONS)


def test_generated_strided_inputs():
    problem = FM_INTERACTION.problem(BACKWARD, CALLS[9][1], {})
    assert not problem.contiguous and not problem.param("shared")
    grad, x, y = FM_INTERACTION.make_inputs(problem, 0, "normal", torch.device("cpu"))
    assert not any(t.is_contiguous() for t in (grad, x, y))
    for impl, genome in runs(problem):
        check_kernel(FM_INTERACTION, problem, impl.build(problem, genome), torch.device("cpu"))


def test_problem_roofline_and_registry():
    problem = FM_INTERACTION.problem(FORWARD, CALLS[0][1], {})
    assert tuple(problem.dim(n) for n in ("batch", "rows", "dim", "k")) == (3, 6, 20, 5)
    assert problem.param("shared") and FM_INTERACTION.reduced_extent(problem, CALLS[0][1]) == 6 * 20
    assert FM_INTERACTION.bytes_moved(problem) == 4 * (3 * 6 * 20 + 6 * 5 + 3 * 6 * 5)
    assert FM_INTERACTION.flops(problem) == 4 * 3 * 6 * 20 * 5
    backward = FM_INTERACTION.problem(BACKWARD, CALLS[7][1], {})
    assert not backward.param("shared")
    assert FM_INTERACTION.bytes_moved(backward) == 4 * (2 * (3 * 6 * 20 + 3 * 6 * 5) + 3 * 6 * 5)
    assert FM_INTERACTION.flops(backward) == 10 * 3 * 6 * 20 * 5
    assert family_for(FORWARD) is family_for(BACKWARD) is FM_INTERACTION


def _problem(rows, dim, k, dtype=torch.float32):
    return FM_INTERACTION.problem(FORWARD, (torch.empty(2, rows, dim, dtype=dtype), torch.empty(rows, k, dtype=dtype)),
                                  {})


@pytest.mark.parametrize("problem,block_d,reason", [
    (_problem(6, 20, 5, torch.float64), 16, "fp64"),
    (_problem(129, 64, 8), 16, "rows > 128"),
    (_problem(16, 64, 65), 16, "k > 64"),
    (_problem(128, 512, 16), 256, "does not fit in registers"),
    (_problem(6, 20, 5), 64, "exceeds the padded dim"),
])
def test_triton_refuses_what_does_not_fit(problem, block_d, reason):
    genome = dict(SMALL, algorithm="project", BLOCK_D=block_d)
    assert reason in FM_INTERACTION.implementation("fm_interaction_triton").supports(problem, genome)


@pytest.mark.parametrize("overload,args,reason", [
    (FORWARD, (X[0], Y), r"\[batch, rows, dim\]"),
    (FORWARD, (X, Y[:4]), r"\[rows, k\] or \[batch, rows, k\]"),
    (FORWARD, (X, Y_PER_SAMPLE[:1]), r"\[rows, k\] or \[batch, rows, k\]"),
    (FORWARD, (X, Y.half()), "dtypes"),
    (FORWARD, (X.int(), Y.int()), "dtypes"),
    (BACKWARD, (GRAD.half(), X, Y), "grad must be"),
    (BACKWARD, (GRAD[:, :, :2], X, Y), "grad must be"),
])
def test_unsupported_calls(overload, args, reason):
    with pytest.raises(Unsupported, match=reason):
        FM_INTERACTION.problem(overload, args, {})
