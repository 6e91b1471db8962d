"""The jagged family: both implementations against ATen's float64 result for jagged -> padded (empty
segments, truncation, non-zero padding, offsets starting past 0, 1-D and 3-D values, strided values)
and padded -> jagged (truncated segments get 0), on poisoned allocations."""
import pytest
import torch

from torch_kevolve.families import JAGGED, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import check_kernel, compare

aten = torch.ops.aten
TO_PADDED, TO_JAGGED = aten._jagged_to_padded_dense_forward.default, aten._padded_dense_to_jagged_forward.default
g = torch.Generator().manual_seed(0)
OFFSETS = torch.tensor([0, 2, 2, 7, 8])  # lengths 2, 0, 5, 1
CALLS = [
    (TO_PADDED, (torch.randn(8, 3, generator=g), [OFFSETS], [4], 0.0)),  # truncates the 5
    (TO_PADDED, (torch.randn(8, 3, generator=g).half(), [OFFSETS.int()], [6], -1.5)),
    (TO_PADDED, (torch.randn(9, generator=g).bfloat16(), [OFFSETS + 1], [3], float("-inf"))),
    (TO_PADDED, (torch.randn(8, 2, 3, generator=g), [OFFSETS], [5], 2.0)),
    (TO_PADDED, (torch.randn(3, 8, generator=g).t(), [OFFSETS], [5], 0.25)),
    (TO_PADDED, (torch.randn(0, 4, generator=g), [torch.zeros(3, dtype=torch.long)], [2], 1.0)),
    (TO_JAGGED, (torch.randn(4, 5, 3, generator=g), [OFFSETS], 8)),
    (TO_JAGGED, (torch.randn(4, 3, 3, generator=g).bfloat16(), [OFFSETS.int()], 8)),  # truncated rows get 0
    (TO_JAGGED, (torch.randn(4, 6, generator=g).half(), [OFFSETS], 8)),
    (TO_JAGGED, (torch.randn(4, 5, 2, 2, generator=g), [OFFSETS], 8)),
]


def ids(value):
    return str(value).split(".")[1] if isinstance(value, torch._ops.OpOverload) else ""


@pytest.mark.parametrize("overload,args", CALLS, ids=ids)
def test_implementations_match_reference(overload, args, poisoned_allocations):
    problem = JAGGED.problem(overload, args, {})
    want = JAGGED.reference(problem, args)
    triton_impl, decomposition = JAGGED.implementation("jagged_triton"), JAGGED.implementation("jagged_decomposition")
    genomes = triton_impl.genomes(problem)
    runs = [(triton_impl, genomes[0]), (triton_impl, dict(genomes[0], BLOCK_N=4))]
    runs += [(decomposition, genome) for genome in decomposition.genomes(problem)]
    for impl, genome in runs:
        got = impl.build(problem, genome)(*args)
        assert got.dtype == args[0].dtype
        compare(JAGGED, problem, (got,), want)


def test_reference_is_eager_aten_and_zeroes_truncated_rows():
    dense = torch.arange(1.0, 13.0).reshape(2, 2, 3)
    offsets = torch.tensor([0, 3, 4])
    problem = JAGGED.problem(TO_JAGGED, (dense, [offsets], 4), {})
    (want,) = JAGGED.reference(problem, (dense, [offsets], 4))
    assert want.tolist() == [[1, 2, 3], [4, 5, 6], [0, 0, 0], [7, 8, 9]]
    args = (torch.randn(7, 3), [OFFSETS[:4]], [6], 0.5)
    torch.testing.assert_close(JAGGED.reference(JAGGED.problem(TO_PADDED, args, {}), args)[0], TO_PADDED(*args).double())


@pytest.mark.parametrize("lengths,max_length", [([3, 0, 5, 1], 5), ([4, 4], 4), ([0, 0, 2], 3), ([6, 1], 7)])
@pytest.mark.parametrize("start", [0, 2])
def test_reference_agrees_with_aten_where_no_segment_is_truncated(lengths, max_length, start):
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.tensor(lengths).cumsum(0)]) + start
    total = int(offsets[-1])  # ATen's contract
    dense = torch.randn(len(lengths), max_length, 2, generator=g)
    (want,) = JAGGED.reference(JAGGED.problem(TO_JAGGED, (dense, [offsets], total), {}), (dense, [offsets], total))
    # Rows before offsets[0] belong to no segment: ATen leaves them unwritten, the reference zeroes them.
    torch.testing.assert_close(want[start:], TO_JAGGED(dense.double(), [offsets], total)[start:])
    assert not want[:start].any()


def test_reference_of_a_long_truncated_segment_stays_small():
    """One segment of 199,000 rows over 512 bags of max_length 4: padding dense to the longest segment would
    take about 52 GB (it killed a worker on the H200); the reference needs only its [total, inner] output."""
    lengths = torch.full((512,), 2)
    lengths[0] = 199_000
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    total = int(offsets[-1])
    dense = torch.randn(512, 4, 64, generator=g)
    (want,) = JAGGED.reference(JAGGED.problem(TO_JAGGED, (dense, [offsets], total), {}), (dense, [offsets], total))
    assert want.shape == (total, 64)
    torch.testing.assert_close(want[:4], dense[0].double())
    assert not want[4:199_000].any()
    torch.testing.assert_close(want[199_000:199_002], dense[1, :2].double())


@pytest.mark.parametrize("index", [0, 7])
def test_generated_inputs(index):
    overload, args = CALLS[index]
    problem = JAGGED.problem(overload, args, {})
    for impl in JAGGED.implementations:
        fn = impl.build(problem, impl.genomes(problem)[0])
        check_kernel(JAGGED, problem, fn, torch.device("cpu"), seeds=(0, 1), dists=DISTRIBUTIONS)


def test_problem_and_registry():
    problem = JAGGED.problem(*CALLS[3], {})
    assert tuple(problem.dim(n) for n in ("batch", "max_length", "total", "inner")) == (4, 5, 8, 6)
    assert problem.param("padding_value") == 2.0
    assert JAGGED.implementation("jagged_triton").supports(problem, dict(BLOCK_N=16, BLOCK_D=128, num_warps=4,
                                                                          num_stages=1)) is not None
    assert family_for(TO_JAGGED) is JAGGED and JAGGED.bytes_moved(problem) > 0


@pytest.mark.parametrize("overload,args,reason", [
    (TO_PADDED, (torch.randn(8, 3), [OFFSETS, OFFSETS], [4, 4], 0.0), "one jagged dim"),
    (TO_PADDED, (torch.randn(8, 3), [OFFSETS.float()], [4], 0.0), "int32/int64"),
    (TO_PADDED, (torch.randn(8, 3).double(), [OFFSETS], [4], 0.0), "float64"),
    (TO_PADDED, (torch.randn(8, 3), [OFFSETS[None]], [4], 0.0), "1-D"),
    (TO_JAGGED, (torch.randn(4, 5, 3), [OFFSETS], None), "total_L"),
    (TO_JAGGED, (torch.randn(3, 5, 3), [OFFSETS], 8), "batch=4"),
])
def test_unsupported_calls(overload, args, reason):
    with pytest.raises(Unsupported, match=reason):
        JAGGED.problem(overload, args, {})
