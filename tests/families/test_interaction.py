"""The interaction family: both implementations (every Triton algorithm and fp32 dot precision, both
decompositions) against the float64 reference on DLRM's pairs and on pairs with repeats, i == j, negative
indices, int32 indices, strided operands and every float dtype, on generated inputs of every distribution,
with fewer persistent programs than samples, and the calls and genomes it refuses."""
import dataclasses

import pytest
import torch
import triton

from torch_kevolve.families import INTERACTION, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import check_kernel, compare
from torch_kevolve.families.interaction import triton_kernel
from torch_kevolve.families.interaction.calls import PAIRWISE_DOTS, PAIRWISE_DOTS_BACKWARD, InteractionCall
from torch_kevolve.families.triton_launch import launch

g = torch.Generator().manual_seed(0)
X = torch.randn(3, 6, 20, generator=g)
FIRST = torch.tensor([1, 2, 5, 5, 0, 4, -1, 3, 3])
SECOND = torch.tensor([0, 2, 1, 1, 0, 3, 2, 5, 5])  # (5, 1) and (3, 5) twice, (2, 2), (0, 0), -1 is row 5
GRAD = torch.randn(3, 9, generator=g)
DLRM_X = torch.randn(5, 27, 20, generator=g)  # 27 rows: BLOCK_F 32
TRIL = tuple(torch.tril_indices(27, 27, offset=-1))  # DLRM's 351 pairs
DLRM_GRAD = torch.randn(5, 351, generator=g)
CALLS = [
    (PAIRWISE_DOTS, (X, FIRST, SECOND)),
    (PAIRWISE_DOTS, (X.half(), FIRST.int(), SECOND.int())),
    (PAIRWISE_DOTS, (X.bfloat16().transpose(1, 2).contiguous().transpose(1, 2), FIRST, SECOND)),
    (PAIRWISE_DOTS, (X.double(), FIRST, SECOND)),
    (PAIRWISE_DOTS, (X, FIRST[:0], SECOND[:0])),
    (PAIRWISE_DOTS_BACKWARD, (GRAD, X, FIRST, SECOND)),
    (PAIRWISE_DOTS_BACKWARD, (GRAD.bfloat16(), X.bfloat16(), FIRST.int(), SECOND.int())),
    (PAIRWISE_DOTS_BACKWARD, (GRAD.half().t().contiguous().t(), X.half(), FIRST, SECOND)),
    (PAIRWISE_DOTS_BACKWARD, (GRAD.double(), X.double(), FIRST, SECOND)),
    (PAIRWISE_DOTS, (torch.randn(3, 8, 20, generator=g)[:, 1:7], FIRST, SECOND)),  # rows of a larger buffer
    (PAIRWISE_DOTS_BACKWARD, (torch.randn(3, 20, generator=g)[:, 5:14], X, FIRST, SECOND)),  # DLRM: a slice of the
    # top MLP's input gradient
    (PAIRWISE_DOTS, (DLRM_X, *TRIL)),
    (PAIRWISE_DOTS, (DLRM_X.bfloat16(), *TRIL)),
    (PAIRWISE_DOTS_BACKWARD, (DLRM_GRAD, DLRM_X, *TRIL)),
    (PAIRWISE_DOTS_BACKWARD, (DLRM_GRAD.bfloat16(), DLRM_X.bfloat16(), *TRIL)),
]
SMALL = dict(fp32_precision="tf32x3", PROGRAMS_PER_SM=4, BLOCK_P=16, BLOCK_D=16, num_warps=1, num_stages=1)


def ids(value):
    return str(value) if isinstance(value, torch._ops.OpOverload) else ""


def runs(problem):
    """(implementation, genome): each Triton algorithm and fp32 dot precision with small blocks (D and P in
    several blocks), the gram and backward with one block of every pair too, every decomposition."""
    triton_impl, decomposition = INTERACTION.implementations
    out = [(triton_impl, dict(SMALL, algorithm=a, fp32_precision=p)) for a in ("gram", "gather")
           for p in ("tf32x3", "ieee", "tf32_split")]
    one_block = triton.next_power_of_2(problem.dim("pairs"))
    if one_block > SMALL["BLOCK_P"]:  # else SMALL's block already holds every pair
        out += [(triton_impl, dict(SMALL, algorithm="gram", fp32_precision=p, BLOCK_P=one_block))
                for p in ("tf32x3", "tf32_split")]
    out = [(i, genome) for i, genome in out if i.supports(problem, genome) is None]
    return out + [(decomposition, genome) for genome in decomposition.genomes(problem)]


@pytest.mark.parametrize("overload,args", CALLS, ids=ids)
def test_implementations_match_reference(overload, args, poisoned_allocations):
    problem = INTERACTION.problem(overload, args, {})
    want = INTERACTION.reference(problem, args)
    eager = overload(*args)
    assert len(runs(problem)) >= 3 if problem.dtype("features") != torch.float64 else len(runs(problem)) >= 2
    for impl, genome in runs(problem):
        got = impl.build(problem, genome)(*args)
        assert (got.shape, got.dtype) == (eager.shape, eager.dtype), (impl.name, genome)
        compare(INTERACTION, problem, (got,), want, INTERACTION.reduced_extent(problem, args))


@pytest.mark.parametrize("overload", [PAIRWISE_DOTS, PAIRWISE_DOTS_BACKWARD], ids=str)
def test_generated_inputs(overload):
    problem = INTERACTION.example_problems(overload)[2]
    for impl, genome in runs(problem):
        check_kernel(INTERACTION, problem, impl.build(problem, genome), torch.device("cpu"), seeds=(0, 1),
                     dists=DISTRIBUTIONS)


def test_generated_pairs_are_dlrms_or_edge_cases():
    problem = INTERACTION.example_problems(PAIRWISE_DOTS)[0]
    _, first, second = INTERACTION.make_inputs(problem, 0, "normal", torch.device("cpu"))
    assert torch.equal(torch.stack([first, second]), torch.tril_indices(4, 4, -1))
    _, first, second = INTERACTION.make_inputs(problem, 0, "edge", torch.device("cpu"))
    assert (first == second).any() and (first < 0).any()


def test_problem_and_registry():
    problem = INTERACTION.problem(PAIRWISE_DOTS, CALLS[0][1], {})
    assert tuple(problem.dim(n) for n in ("batch", "rows", "dim", "pairs")) == (3, 6, 20, 9)
    assert INTERACTION.bytes_moved(problem) == 4 * (3 * 6 * 20 + 3 * 9) + 2 * 9 * 8
    assert INTERACTION.flops(problem) == 2 * 3 * 9 * 20
    assert family_for(PAIRWISE_DOTS_BACKWARD) is INTERACTION
    triton_impl = INTERACTION.implementation("interaction_triton")
    assert "padded dim" in triton_impl.supports(problem, dict(SMALL, algorithm="gram", BLOCK_D=64))
    backward = INTERACTION.problem(PAIRWISE_DOTS_BACKWARD, CALLS[5][1], {})
    assert "gram algorithm only" in triton_impl.supports(backward, dict(SMALL, algorithm="gather"))
    assert "no effect on the gather algorithm" in triton_impl.supports(problem, dict(SMALL, algorithm="gather",
                                                                                      PROGRAMS_PER_SM=8))
    half = INTERACTION.problem(PAIRWISE_DOTS, CALLS[1][1], {})
    assert "no effect on torch.float16 features" in triton_impl.supports(half, dict(SMALL, algorithm="gram",
                                                                                     fp32_precision="ieee"))
    assert "forward gram's" in triton_impl.supports(backward, dict(SMALL, algorithm="gram",
                                                                   fp32_precision="tf32_split"))
    wide = INTERACTION.problem(PAIRWISE_DOTS, CALLS[3][1], {})
    assert "fp64 has no tl.dot" in triton_impl.supports(wide, dict(SMALL, algorithm="gram"))


def test_persistent_programs_loop_over_several_samples(monkeypatch):
    """At DLRM's rows and pairs the gram and backward kernels run fewer programs than samples
    (INTERPRETER_PROGRAMS on CPU), each reusing its scratch slot for samples pid, pid + programs, ..., and
    every sample is right."""
    grids = []

    def recording(kernel, grid, *args, **kwargs):
        grids.append(grid)
        launch(kernel, grid, *args, **kwargs)

    monkeypatch.setattr(triton_kernel, "launch", recording)
    impl = INTERACTION.implementation("interaction_triton")
    for overload, args in CALLS[-4:]:
        problem = INTERACTION.problem(overload, args, {})
        compare(INTERACTION, problem, (impl.build(problem, dict(SMALL, algorithm="gram"))(*args),),
                INTERACTION.reference(problem, args), INTERACTION.reduced_extent(problem, args))
    assert grids == [(triton_kernel.INTERPRETER_PROGRAMS,)] * 4
    assert DLRM_X.shape[0] > 2 * triton_kernel.INTERPRETER_PROGRAMS  # some programs take three samples


def test_programs_per_sm_sets_the_gpu_grid(monkeypatch):
    monkeypatch.setattr(triton_kernel, "_multiprocessors", lambda device: 132)
    call = InteractionCall(False, 4096, 27, 128, 351, torch.float32)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert triton_kernel.programs(call, dict(PROGRAMS_PER_SM=8), cuda) == 1056
    assert triton_kernel.programs(call, dict(PROGRAMS_PER_SM=8), cpu) == triton_kernel.INTERPRETER_PROGRAMS
    assert triton_kernel.programs(dataclasses.replace(call, batch=100), dict(PROGRAMS_PER_SM=2), cuda) == 100


@pytest.mark.parametrize("overload,args,reason", [
    (PAIRWISE_DOTS, (X[0], FIRST, SECOND), r"\[batch, rows, dim\]"),
    (PAIRWISE_DOTS, (X.int(), FIRST, SECOND), "not fp32"),
    (PAIRWISE_DOTS, (X, FIRST, SECOND[:3]), "one length"),
    (PAIRWISE_DOTS, (X, FIRST.int(), SECOND), "index dtypes"),
    (PAIRWISE_DOTS_BACKWARD, (GRAD.half(), X, FIRST, SECOND), "grad must be"),
])
def test_unsupported_calls(overload, args, reason):
    with pytest.raises(Unsupported, match=reason):
        INTERACTION.problem(overload, args, {})


def test_kernels_read_features_and_gradient_in_place(monkeypatch):
    """Strided features and gradient reach the kernels as they are (their strides passed along), not copied."""
    from tests.families.test_sm90_compile import captured_launches

    launched = captured_launches(monkeypatch, triton_kernel)
    features, grad = X.transpose(1, 2).contiguous().transpose(1, 2), torch.randn(3, 20, generator=g)[:, 5:14]
    impl = INTERACTION.implementation("interaction_triton")
    for overload, args in ((PAIRWISE_DOTS, (features, FIRST, SECOND)),
                           (PAIRWISE_DOTS_BACKWARD, (grad, features, FIRST, SECOND))):
        problem = INTERACTION.problem(overload, args, {})
        for algorithm in ("gram", "gather") if overload == PAIRWISE_DOTS else ("gram",):
            launched.clear()
            impl.build(problem, dict(SMALL, algorithm=algorithm))(*args)
            (kernel, launch_args, _), = launched
            tensors = [a for a in launch_args if isinstance(a, torch.Tensor)]
            assert tensors[0] is args[0] and (overload == PAIRWISE_DOTS or tensors[1] is features), kernel
            assert features.stride() == tuple(launch_args[-3:])
