"""The embedding_bag family: every implementation against ATen's float64 CPU result, the custom op's
fake against ATen's meta, aux outputs accepted by ATen's backward, and the rejected calls."""
import itertools

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.symbolic_shapes import ShapeEnv

from torch_kevolve.families import EMBEDDING_BAG, FAMILIES, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.embedding_bag import inputs
from torch_kevolve.families.embedding_bag.ops import genome_json

aten = torch.ops.aten
OVERLOAD = aten._embedding_bag.default
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# (padding_idx set, include_last_offset, index dtype): every pair of values occurs.
FLAG_RUNS = ((False, False, torch.int64), (False, True, torch.int32), (True, False, torch.int32), (True, True, torch.int64))
SIZES = ((8, 24, 30), (13, 8, 40), (21, 40, 64), (24, 64, 50))  # (num_bags, dim, num_weights)
TRITON_GENOMES = (
    dict(BLOCK_N=8, BLOCK_D=16, BAGS_PER_PROGRAM=2, num_warps=4, num_stages=1),
    dict(BLOCK_N=1, BLOCK_D=32, BAGS_PER_PROGRAM=1, num_warps=2, num_stages=2),
    dict(BLOCK_N=32, BLOCK_D=64, BAGS_PER_PROGRAM=4, num_warps=8, num_stages=3),
    dict(BLOCK_N=16, BLOCK_D=16, BAGS_PER_PROGRAM=8, num_warps=1, num_stages=1),
)


def make_problem(mode, dtype, psw, padding, include_last_offset, index_dtype, num_bags, dim, num_weights, num_indices):
    weight = torch.empty(num_weights, dim, dtype=dtype)
    indices = torch.zeros(num_indices, dtype=index_dtype)
    offsets = torch.zeros(num_bags + include_last_offset, dtype=index_dtype)
    args = (weight, indices, offsets, False, mode, False, torch.empty(num_indices, dtype=dtype) if psw else None,
            include_last_offset, 3 if padding else -1)
    return EMBEDDING_BAG.problem(OVERLOAD, args, {})


def cases():
    """Every mode x dtype with the flag runs; per_sample_weights alternates over sum-mode runs."""
    for k, (mode, (d, dtype), (padding, ilo, index_dtype)) in enumerate(
        itertools.product((0, 1, 2), enumerate(DTYPES), FLAG_RUNS)
    ):
        num_bags, dim, num_weights = SIZES[k % len(SIZES)]
        psw = mode == 0 and (k + d) % 2 == 1
        problem = make_problem(mode, dtype, psw, padding, ilo, index_dtype, num_bags, dim, num_weights, 3 * num_bags)
        name = f"{['sum', 'mean', 'max'][mode]}-{str(dtype)[6:]}-psw{int(psw)}-pad{int(padding)}-ilo{int(ilo)}-{str(index_dtype)[6:]}"
        yield pytest.param(k, problem, id=name)


def dists_for(k):
    """Two distributions per case, edge always (its layout alternates with the seed's parity)."""
    return (("normal", "uniform", "normal", "large")[k % 4], "edge")


def aten_meta(args):
    """ATen's fake outputs for real `args` (the layout graphs are built with; ATen's CPU kernel
    itself differs for bf16, where it takes the sum fast path that its meta does not)."""
    with FakeTensorMode() as mode:
        return aten._embedding_bag(*(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args))


def check_against_reference(problem, args, outputs, assert_matches):
    reference = EMBEDDING_BAG.reference(problem, args)
    for got, want in zip(outputs, aten_meta(args)):
        assert (got.shape, got.dtype, got.stride()) == (want.shape, want.dtype, want.stride())
    weight, _, offsets, _, mode, _, psw, _, _ = args
    reach = inputs.longest_bag(offsets, problem.dim("num_bags"), problem.dim("num_indices"))
    scale = weight.abs().max().item() * (1.0 if psw is None else psw.abs().max().item())
    assert_matches(outputs[0], reference[0], reach, scale, exact=mode == 2)
    for i in EMBEDDING_BAG.checked_outputs(problem)[1:]:
        assert_matches(outputs[i], reference[i])


@pytest.mark.parametrize("k,problem", list(cases()))
def test_triton_matches_reference(k, problem, poisoned_allocations, assert_matches):
    impl = EMBEDDING_BAG.implementation("embedding_bag_triton")
    start = (k + k // 4) % len(TRITON_GENOMES)
    genome = next(g for g in TRITON_GENOMES[start:] + TRITON_GENOMES if impl.supports(problem, g) is None)
    run = impl.build(problem, genome)
    for dist in dists_for(k):
        args = EMBEDDING_BAG.make_inputs(problem, k, dist, torch.device("cpu"))
        check_against_reference(problem, args, run(*args), assert_matches)


@pytest.mark.parametrize("k,problem", list(cases()))
def test_decomposition_matches_reference(k, problem, assert_matches):
    impl = EMBEDDING_BAG.implementation("embedding_bag_decomposition")
    for genome in impl.genomes(problem):
        run = impl.build(problem, genome)
        for dist in DISTRIBUTIONS:
            args = EMBEDDING_BAG.make_inputs(problem, k, dist, torch.device("cpu"))
            check_against_reference(problem, args, run(*args), assert_matches)


def test_all_genomes_of_a_small_problem(assert_matches):
    """Every BLOCK_N x BLOCK_D x BAGS_PER_PROGRAM the space allows for D=24 (warps/stages fixed)."""
    problem = make_problem(1, torch.float32, False, True, False, torch.int64, 5, 24, 12, 14)
    impl = EMBEDDING_BAG.implementation("embedding_bag_triton")
    args = EMBEDDING_BAG.make_inputs(problem, 1, "edge", torch.device("cpu"))
    for genome in impl.genomes(problem):
        if genome["num_warps"] == 4 and genome["num_stages"] == 1:
            check_against_reference(problem, args, impl.build(problem, genome)(*args), assert_matches)


def test_genome_spaces_reject_wide_tiles_and_foreign_genomes():
    impl = EMBEDDING_BAG.implementation("embedding_bag_triton")
    problem = make_problem(0, torch.float32, False, False, False, torch.int64, 4, 8, 10, 8)
    assert {g["BLOCK_D"] for g in impl.genomes(problem)} == {16}
    assert "BLOCK_D=128" in impl.supports(problem, impl.genome_space.default())
    # The default adapted to the problem changes only the gene that did not fit.
    assert impl.default_genome(problem) == dict(impl.genome_space.default(), BLOCK_D=16)
    wide = make_problem(0, torch.float32, False, False, False, torch.int64, 4, 128, 10, 8)
    assert impl.default_genome(wide) == impl.genome_space.default()
    with pytest.raises(ValueError):
        impl.build(problem, {"BLOCK_N": 3})
    decomposition = EMBEDDING_BAG.implementation("embedding_bag_decomposition")
    max_problem = make_problem(2, torch.float32, False, False, False, torch.int64, 4, 8, 10, 8)
    assert [g["reduce"] for g in decomposition.genomes(max_problem)] == ["index_add"]


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("implementation", ["embedding_bag_triton", "embedding_bag_decomposition"])
def test_aux_outputs_are_accepted_by_aten_backward(mode, implementation):
    """ATen's backward fed our offset2bag/bag_size/max_indices gives what it gives fed ATen's."""
    psw = mode == 0
    problem = make_problem(mode, torch.float32, psw, True, False, torch.int64, 12, 8, 10, 36)
    impl = EMBEDDING_BAG.implementation(implementation)
    run = impl.build(problem, impl.genomes(problem)[0])
    for seed in (1, 3):  # edge layouts with empty bags, a padding-only bag and padding hits
        args = EMBEDDING_BAG.make_inputs(problem, seed, "edge", torch.device("cpu"))
        weight, indices, offsets, _, _, _, per_sample_weights, _, padding_idx = args
        ours, theirs = run(*args), aten._embedding_bag(*args)
        assert (theirs[2] == 0).any() and (indices == padding_idx).any()
        grad = torch.randn(problem.dim("num_bags"), problem.dim("dim"))
        flags = (weight.shape[0], False, mode, False, per_sample_weights, padding_idx)
        want = aten._embedding_bag_backward(grad, indices, offsets, *theirs[1:], *flags)
        got = aten._embedding_bag_backward(grad, indices, offsets, *ours[1:], *flags)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        if psw:
            want = aten._embedding_bag_per_sample_weights_backward(grad, weight, indices, offsets, theirs[1], mode,
                                                                   padding_idx)
            got = aten._embedding_bag_per_sample_weights_backward(grad, weight, indices, offsets, ours[1], mode,
                                                                  padding_idx)
            torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_fake_outputs_match_aten_meta(device):
    """The custom op's fake gives ATen's shapes, dtypes and strides on that device, for every flag."""
    genome = genome_json(TRITON_GENOMES[0])
    with FakeTensorMode():
        for mode, dtype, padding_idx, ilo, index_dtype in itertools.product(
            (0, 1, 2), DTYPES, (-1, 2), (False, True), (torch.int32, torch.int64)
        ):
            weight = torch.empty(10, 6, dtype=dtype, device=device)
            indices = torch.empty(7, dtype=index_dtype, device=device)
            offsets = torch.empty(4 + ilo, dtype=index_dtype, device=device)
            for psw in [None, torch.empty(7, dtype=dtype, device=device)][: 2 if mode == 0 else 1]:
                ours = torch.ops.kevolve.embedding_bag_forward(weight, indices, offsets, psw, mode, ilo, padding_idx, genome)
                theirs = aten._embedding_bag(weight, indices, offsets, False, mode, False, psw, ilo, padding_idx)
                for a, b in zip(ours, theirs):
                    assert (a.shape, a.dtype, a.stride(), a.device) == (b.shape, b.dtype, b.stride(), b.device)


def test_custom_op_passes_opcheck():
    problem = make_problem(2, torch.float32, False, True, True, torch.int64, 4, 8, 10, 9)
    weight, indices, offsets, _, mode, _, psw, ilo, padding_idx = EMBEDDING_BAG.make_inputs(
        problem, 0, "normal", torch.device("cpu")
    )
    args = (weight, indices, offsets, psw, mode, ilo, padding_idx, genome_json(TRITON_GENOMES[0]))
    torch.library.opcheck(torch.ops.kevolve.embedding_bag_forward.default, args)


@pytest.mark.parametrize("implementation", ["embedding_bag_triton", "embedding_bag_decomposition"])
def test_runs_under_inductor(implementation):
    problem = make_problem(1, torch.float32, False, True, False, torch.int64, 6, 8, 10, 12)
    impl = EMBEDDING_BAG.implementation(implementation)
    run = torch.compile(impl.build(problem, impl.genomes(problem)[0]), backend="inductor", fullgraph=True)
    args = EMBEDDING_BAG.make_inputs(problem, 0, "normal", torch.device("cpu"))
    for got, want in zip(run(*args), aten._embedding_bag(*args)):
        torch.testing.assert_close(got, want)


def test_make_inputs_respects_the_problem_and_each_distribution():
    problem = make_problem(0, torch.float16, True, True, True, torch.int32, 9, 16, 20, 27)
    for seed, dist in itertools.product((0, 1), DISTRIBUTIONS):
        args = EMBEDDING_BAG.make_inputs(problem, seed, dist, torch.device("cpu"))
        weight, indices, offsets, _, _, _, psw, _, padding_idx = args
        assert weight.shape == (20, 16) and weight.dtype == torch.float16
        assert indices.shape == (27,) and offsets.shape == (10,) and offsets.dtype == torch.int32
        assert offsets[0] == 0 and offsets[-1] == 27 and (offsets.diff() >= 0).all()
        assert psw.shape == (27,) and EMBEDDING_BAG.problem(OVERLOAD, args, {}) == problem
        assert torch.isfinite(aten._embedding_bag(*args)[0]).all()
        if dist == "large":
            assert 1e3 <= weight.abs().max() <= 1e4
        if dist == "edge":
            lengths = offsets.diff()
            assert (lengths == 0).any() and (indices == padding_idx).any()
            assert indices.unique().numel() <= 4
            if seed % 2 == 0:
                assert lengths.max() == 27


def test_checked_outputs_and_bytes_moved():
    sum_problem = make_problem(0, torch.float32, False, False, False, torch.int64, 8, 16, 100, 32)
    assert EMBEDDING_BAG.checked_outputs(sum_problem) == (0,)
    assert EMBEDDING_BAG.checked_outputs(make_problem(1, torch.float32, False, False, False, torch.int64, 8, 16, 100, 32)) == (0, 1, 2)
    assert EMBEDDING_BAG.checked_outputs(make_problem(2, torch.float32, False, False, True, torch.int64, 8, 16, 100, 32)) == (0, 1, 3)
    touched = 28  # of 100 rows, by 32 uniform draws: 100 (1 - 0.99^32) = 27.5
    assert EMBEDDING_BAG.bytes_moved(sum_problem) == (32 + 8) * 8 + touched * 16 * 4 + 8 * 16 * 4


def test_rows_touched_is_the_expected_count_of_distinct_uniform_draws():
    g = torch.Generator().manual_seed(0)
    for draws, rows in ((20000, 10000), (3000, 100000), (500, 50)):
        seen = [torch.randint(0, rows, (draws,), generator=g).unique().numel() for _ in range(20)]
        expected = inputs.rows_touched(draws, rows)
        assert abs(sum(seen) / len(seen) - expected) <= 0.01 * expected, (draws, rows)
    assert inputs.rows_touched(0, 10) == 0 and inputs.rows_touched(5, 0) == 0 and inputs.rows_touched(10**9, 7) == 7


def test_family_registry():
    assert FAMILIES[:2] == (EMBEDDING_BAG, family_for(aten._embedding_bag_backward.default))
    assert family_for(OVERLOAD) is EMBEDDING_BAG
    assert family_for(aten._embedding_bag_dense_backward.default).name == "embedding_bag_backward"
    assert family_for(aten.convolution.default) is None
    assert all(f.version for f in FAMILIES)
    assert all(impl.source_sha256() for f in FAMILIES for impl in f.implementations)


def _weight_indices_offsets(**overrides):
    args = dict(
        weight=torch.randn(10, 4), indices=torch.tensor([1, 2, 3]), offsets=torch.tensor([0, 2]),
    )
    args.update(overrides)
    return args


@pytest.mark.parametrize(
    "kwargs,reason",
    [
        (dict(scale_grad_by_freq=True), "scale_grad_by_freq"),
        (dict(sparse=True), "sparse"),
        (dict(weight=torch.randn(10, 4, dtype=torch.float64)), "float64"),
        (dict(weight=torch.randn(4, 10).t()), "contiguous"),
        (dict(weight=torch.randn(10)), "2-D"),
        (dict(indices=torch.tensor([[1, 2], [3, 4]]), offsets=None), "1-D"),
        (dict(indices=torch.tensor([1, 2, 3], dtype=torch.int32)), "differs"),
        (dict(mode=1, per_sample_weights=torch.ones(3)), "per_sample_weights"),
        (dict(per_sample_weights=torch.ones(3, dtype=torch.float16)), "per_sample_weights"),
        (dict(mode=3), "mode"),
        (dict(offsets=torch.tensor([0]), include_last_offset=True), "no bags"),
    ],
)
def test_rejects_unsupported_calls(kwargs, reason):
    args = _weight_indices_offsets(**kwargs)
    with pytest.raises(Unsupported, match=reason):
        EMBEDDING_BAG.problem(OVERLOAD, (), args)


def test_rejects_symbolic_shapes_and_foreign_overloads():
    shape_env = ShapeEnv()
    with FakeTensorMode(shape_env=shape_env):
        indices = torch.empty(shape_env.create_unbacked_symint(), dtype=torch.int64)
        args = _weight_indices_offsets(weight=torch.empty(10, 4), indices=indices, offsets=torch.empty(2, dtype=torch.int64))
        with pytest.raises(Unsupported, match="symbolic"):
            EMBEDDING_BAG.problem(OVERLOAD, (), args)
    with pytest.raises(Unsupported, match="not an overload"):
        EMBEDDING_BAG.problem(aten.embedding.default, (), _weight_indices_offsets())
    with pytest.raises(Unsupported, match="scale_grad_by_freq"):
        problem = make_problem(0, torch.float32, False, False, False, torch.int64, 2, 4, 10, 3)
        EMBEDDING_BAG.implementation("embedding_bag_decomposition").build(problem, {"reduce": "index_add"})(
            torch.randn(10, 4), torch.tensor([1, 2, 3]), torch.tensor([0, 2]), True
        )


def test_inference_overload_is_claimed_with_the_same_kernels(assert_matches):
    weight, indices, offsets = torch.randn(30, 8), torch.randint(0, 30, (20,)), torch.tensor([0, 3, 3, 11])
    args = (weight, indices, offsets, False, 1, False, None, False, -1)
    problem = EMBEDDING_BAG.problem(aten._embedding_bag_forward_only.default, args, {})
    assert problem.op == "aten._embedding_bag_forward_only.default"
    want = aten._embedding_bag_forward_only(weight.double(), indices, offsets, False, 1)[0]
    for impl in EMBEDDING_BAG.implementations:
        assert_matches(impl.build(problem, impl.genomes(problem)[0])(*args)[0], want, 8, 4.0)
