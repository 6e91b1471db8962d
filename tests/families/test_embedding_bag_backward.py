"""The embedding_bag_backward family: both overloads, every implementation and algorithm against
ATen's float64 CPU backward; untrusted aux; the custom op's fake; the rejected calls."""
import itertools

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from torch_kevolve.families import EMBEDDING_BAG_BACKWARD
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.embedding_bag import inputs
from torch_kevolve.families.embedding_bag.ops import genome_json

aten = torch.ops.aten
BACKWARD = aten._embedding_bag_backward.default
DENSE = aten._embedding_bag_dense_backward.default
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
FLAG_RUNS = ((False, False, torch.int64), (False, True, torch.int32), (True, False, torch.int32), (True, True, torch.int64))
SIZES = ((8, 24, 30), (13, 8, 40), (21, 40, 24), (24, 64, 50))  # (num_bags, dim, num_weights)
TRITON_GENOMES = (
    dict(algorithm="segment", BLOCK_N=8, BLOCK_D=16, ITEMS_PER_PROGRAM=4, num_warps=4, num_stages=1),
    dict(algorithm="atomic", BLOCK_N=1, BLOCK_D=32, ITEMS_PER_PROGRAM=1, num_warps=2, num_stages=2),
    dict(algorithm="segment", BLOCK_N=1, BLOCK_D=64, ITEMS_PER_PROGRAM=16, num_warps=8, num_stages=3),
    dict(algorithm="atomic", BLOCK_N=16, BLOCK_D=16, ITEMS_PER_PROGRAM=4, num_warps=1, num_stages=1),
)


def make_problem(overload, mode, dtype, psw, padding, ilo, index_dtype, num_bags, dim, num_weights, num_indices,
                 contiguous=True):
    grad = torch.empty(num_bags, dim, dtype=dtype) if contiguous else torch.empty(dim, num_bags, dtype=dtype).t()
    indices = torch.zeros(num_indices, dtype=index_dtype)
    offset2bag = torch.zeros(num_indices, dtype=index_dtype)
    bag_size = torch.zeros(num_bags, dtype=index_dtype)
    max_indices = torch.zeros((num_bags, dim) if mode == 2 else (num_bags,), dtype=index_dtype)
    per_sample_weights = torch.empty(num_indices, dtype=dtype) if psw else None
    padding_idx = 3 if padding else -1
    if overload is DENSE:
        args = (grad, indices, offset2bag, bag_size, max_indices, num_weights, False, mode, per_sample_weights,
                padding_idx)
    else:
        offsets = torch.zeros(num_bags + ilo, dtype=index_dtype)
        args = (grad, indices, offsets, offset2bag, bag_size, max_indices, num_weights, False, mode, False,
                per_sample_weights, padding_idx)
    return EMBEDDING_BAG_BACKWARD.problem(overload, args, {})


def cases():
    """Every mode x dtype with the flag runs, alternating the overload, grad layout and per_sample_weights."""
    for k, (mode, (d, dtype), (padding, ilo, index_dtype)) in enumerate(
        itertools.product((0, 1, 2), enumerate(DTYPES), FLAG_RUNS)
    ):
        num_bags, dim, num_weights = SIZES[k % len(SIZES)]
        psw = mode == 0 and (k + d) % 2 == 1
        overload = DENSE if (k + d) % 3 == 0 else BACKWARD
        contiguous = k % 5 != 0
        problem = make_problem(overload, mode, dtype, psw, padding, ilo, index_dtype, num_bags, dim, num_weights,
                               3 * num_bags, contiguous)
        name = (f"{overload._opname}-{['sum', 'mean', 'max'][mode]}-{str(dtype)[6:]}-psw{int(psw)}-pad{int(padding)}"
                f"-ilo{int(ilo)}-{str(index_dtype)[6:]}{'' if contiguous else '-strided'}")
        yield pytest.param(k, problem, id=name)


def aten_meta(problem, args):
    overload = DENSE if problem.op == str(DENSE) else BACKWARD
    with FakeTensorMode() as mode:
        return overload(*(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args))


def check_against_reference(problem, args, gradient, assert_matches):
    (reference,) = EMBEDDING_BAG_BACKWARD.reference(problem, args)
    meta = aten_meta(problem, args)
    assert (gradient.shape, gradient.dtype, gradient.stride()) == (meta.shape, meta.dtype, meta.stride())
    grad, indices, psw = args[0], args[1], args[-2]
    scale = grad.abs().max().item() * (1.0 if psw is None else psw.abs().max().item())
    assert_matches(gradient, reference, inputs.most_repeats(indices), scale)


@pytest.mark.parametrize("k,problem", list(cases()))
def test_triton_matches_reference(k, problem, poisoned_allocations, assert_matches):
    impl = EMBEDDING_BAG_BACKWARD.implementation("embedding_bag_backward_triton")
    start = (k + k // 4) % len(TRITON_GENOMES)
    genomes = [g for g in TRITON_GENOMES[start:] + TRITON_GENOMES if impl.supports(problem, g) is None]
    for genome, dist in zip(genomes, (("normal", "uniform", "normal", "large")[k % 4], "edge")):
        args = EMBEDDING_BAG_BACKWARD.make_inputs(problem, k, dist, torch.device("cpu"))
        check_against_reference(problem, args, impl.build(problem, genome)(*args), assert_matches)


@pytest.mark.parametrize("k,problem", list(cases()))
def test_decomposition_matches_reference(k, problem, assert_matches):
    impl = EMBEDDING_BAG_BACKWARD.implementation("embedding_bag_backward_decomposition")
    for genome in impl.genomes(problem):
        run = impl.build(problem, genome)
        for dist in DISTRIBUTIONS:
            args = EMBEDDING_BAG_BACKWARD.make_inputs(problem, k, dist, torch.device("cpu"))
            check_against_reference(problem, args, run(*args), assert_matches)


def test_all_genomes_of_a_small_problem(assert_matches):
    """Every algorithm x BLOCK_N x BLOCK_D x ITEMS_PER_PROGRAM the space allows for D=24."""
    problem = make_problem(BACKWARD, 1, torch.float32, False, True, False, torch.int64, 5, 24, 12, 14)
    impl = EMBEDDING_BAG_BACKWARD.implementation("embedding_bag_backward_triton")
    args = EMBEDDING_BAG_BACKWARD.make_inputs(problem, 1, "edge", torch.device("cpu"))
    for genome in impl.genomes(problem):
        if genome["num_warps"] == 4 and genome["num_stages"] == 1:
            check_against_reference(problem, args, impl.build(problem, genome)(*args), assert_matches)


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("implementation", ["embedding_bag_backward_triton", "embedding_bag_backward_decomposition"])
def test_offsets_overload_ignores_offset2bag_and_bag_size(mode, implementation, assert_matches):
    """ATen CPU's sum fast path gives an empty offset2bag and a zero bag_size; max's empty bags get
    max_indices 0 there. The gradient must not depend on them."""
    problem = make_problem(BACKWARD, mode, torch.float32, mode == 0, True, False, torch.int64, 10, 8, 12, 30)
    impl = EMBEDDING_BAG_BACKWARD.implementation(implementation)
    candidates = TRITON_GENOMES[:2] if implementation.endswith("triton") else impl.genomes(problem)
    args = list(EMBEDDING_BAG_BACKWARD.make_inputs(problem, 1, "edge", torch.device("cpu")))
    (reference,) = EMBEDDING_BAG_BACKWARD.reference(problem, args)
    if mode == 2:
        args[5] = torch.where(args[5] < 0, 0, args[5])
    else:
        args[3], args[4] = args[3][:0], torch.zeros_like(args[4])
    for genome in candidates:
        if impl.supports(problem, genome) is None:
            assert_matches(impl.build(problem, genome)(*args), reference, inputs.most_repeats(args[1]))


def test_fake_matches_aten_meta_and_opcheck():
    genome = genome_json(TRITON_GENOMES[0])
    with FakeTensorMode():
        for dtype, strided in itertools.product(DTYPES, (False, True)):
            grad = torch.empty(4, 6, dtype=dtype) if not strided else torch.empty(6, 4, dtype=dtype).t()
            indices, offsets = torch.empty(9, dtype=torch.int64), torch.empty(4, dtype=torch.int64)
            ours = torch.ops.kevolve.embedding_bag_backward(grad, indices, offsets, indices, indices, None, 11, 0, -1,
                                                             genome)
            theirs = aten._embedding_bag_backward(grad, indices, offsets, indices, offsets, offsets, 11, False, 0, False,
                                                  None, -1)
            assert (ours.shape, ours.dtype, ours.stride()) == (theirs.shape, theirs.dtype, theirs.stride())
    problem = make_problem(BACKWARD, 1, torch.float16, False, True, True, torch.int32, 4, 8, 10, 9)
    grad, indices, offsets, offset2bag, _, max_indices, num_weights, _, mode, _, psw, padding_idx = (
        EMBEDDING_BAG_BACKWARD.make_inputs(problem, 0, "normal", torch.device("cpu"))
    )
    for genome in TRITON_GENOMES[:2]:
        args = (grad, indices, offsets, offset2bag, max_indices, psw, num_weights, mode, padding_idx, genome_json(genome))
        torch.library.opcheck(torch.ops.kevolve.embedding_bag_backward.default, args)


@pytest.mark.parametrize("implementation", ["embedding_bag_backward_triton", "embedding_bag_backward_decomposition"])
def test_runs_under_inductor(implementation):
    problem = make_problem(BACKWARD, 1, torch.float32, False, True, False, torch.int64, 6, 8, 10, 12)
    impl = EMBEDDING_BAG_BACKWARD.implementation(implementation)
    run = torch.compile(impl.build(problem, impl.genomes(problem)[0]), backend="inductor", fullgraph=True)
    args = EMBEDDING_BAG_BACKWARD.make_inputs(problem, 0, "normal", torch.device("cpu"))
    torch.testing.assert_close(run(*args), aten._embedding_bag_backward(*args))


def test_make_inputs_gives_the_problem_back():
    for overload, mode, contiguous in itertools.product((BACKWARD, DENSE), (0, 1, 2), (True, False)):
        problem = make_problem(overload, mode, torch.bfloat16, mode == 0, True, True, torch.int32, 7, 16, 20, 21,
                               contiguous)
        for dist in DISTRIBUTIONS:
            args = EMBEDDING_BAG_BACKWARD.make_inputs(problem, 2, dist, torch.device("cpu"))
            assert EMBEDDING_BAG_BACKWARD.problem(overload, args, {}) == problem
            assert args[0].is_contiguous() == contiguous
            (reference,) = EMBEDDING_BAG_BACKWARD.reference(problem, args)
            assert torch.isfinite(reference.to(torch.bfloat16)).all()


def test_checked_outputs_and_bytes_moved():
    problem = make_problem(BACKWARD, 0, torch.float32, False, False, False, torch.int64, 8, 16, 100, 32)
    assert EMBEDDING_BAG_BACKWARD.checked_outputs(problem) == (0,)
    assert EMBEDDING_BAG_BACKWARD.bytes_moved(problem) == 8 * 16 * 4 + (32 + 8) * 8 + 100 * 16 * 4
    max_problem = make_problem(BACKWARD, 2, torch.float16, False, False, False, torch.int32, 8, 16, 100, 32)
    assert EMBEDDING_BAG_BACKWARD.bytes_moved(max_problem) == 8 * 16 * (2 + 4) + 100 * 16 * 2


def test_segment_algorithm_declines_max_mode():
    problem = make_problem(BACKWARD, 2, torch.float32, False, False, False, torch.int64, 4, 16, 10, 8)
    impl = EMBEDDING_BAG_BACKWARD.implementation("embedding_bag_backward_triton")
    assert "atomic" in impl.supports(problem, TRITON_GENOMES[0])
    assert {g["algorithm"] for g in impl.genomes(problem)} == {"atomic"}


def _backward_args(**overrides):
    args = dict(
        grad=torch.randn(2, 4), indices=torch.tensor([1, 2, 3]), offsets=torch.tensor([0, 2]),
        offset2bag=torch.tensor([0, 0, 1]), bag_size=torch.tensor([2, 1]), maximum_indices=torch.tensor([2, 1]),
        num_weights=10, scale_grad_by_freq=False, mode=0, sparse=False, per_sample_weights=None, padding_idx=-1,
    )
    args.update(overrides)
    return args


@pytest.mark.parametrize(
    "overload,kwargs,reason",
    [
        (BACKWARD, dict(sparse=True), "sparse"),
        (BACKWARD, dict(scale_grad_by_freq=True), "scale_grad_by_freq"),
        (BACKWARD, dict(grad=torch.randn(2, 4, dtype=torch.float64)), "float64"),
        (BACKWARD, dict(grad=torch.randn(2, 4, 1)), "2-D"),
        (BACKWARD, dict(offsets=torch.tensor([0, 1, 2, 3])), "offsets has 4 entries"),
        (BACKWARD, dict(offsets=torch.tensor([0, 2], dtype=torch.int32)), "differs"),
        (BACKWARD, dict(mode=2), "maximum_indices"),
        (BACKWARD, dict(mode=1, per_sample_weights=torch.ones(3)), "per_sample_weights"),
        (DENSE, dict(offset2bag=torch.tensor([], dtype=torch.int64)), "offset2bag"),
    ],
)
def test_rejects_unsupported_calls(overload, kwargs, reason):
    args = _backward_args(**kwargs)
    if overload is DENSE:
        del args["offsets"], args["sparse"]
    with pytest.raises(Unsupported, match=reason):
        EMBEDDING_BAG_BACKWARD.problem(overload, (), args)
