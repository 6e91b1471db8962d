"""The segment_reduce family: every implementation against ATen's float64 result for every reduction it takes,
by lengths and by offsets, with and without initial values, with empty segments (initial value, identity,
NaN for mean), NaN data, ties of max/min with gradients of both signs, rows no segment holds
(unsafe=True), rank 1 and 3 data and strided data, on poisoned allocations; the one-pass max/min gradient also
on segments longer than the rows it holds."""
import itertools

import pytest
import torch

from torch_kevolve.families import SEGMENT_REDUCE, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Abstraction, Unsupported
from torch_kevolve.families.checking import check_kernel, compare
from torch_kevolve.families.schema import schema_values

aten = torch.ops.aten
FORWARD, BACKWARD = aten.segment_reduce.default, aten._segment_reduce_backward.default
g = torch.Generator().manual_seed(0)
LENGTHS = torch.tensor([2, 0, 5, 1, 0])
OFFSETS = torch.cat([torch.zeros(1, dtype=torch.long), LENGTHS.cumsum(0)])
DATA = torch.randn(8, 3, generator=g)
TIES = torch.tensor([[1.0, 2.0], [3.0, 2.0], [3.0, 0.0], [float("nan"), 5.0], [5.0, 5.0]])
TIE_LENGTHS = torch.tensor([3, 0, 2])
SMALL_ONE_PASS = dict(RESIDENT_ROWS=64, TAIL_PASSES=1, TAIL_FIX="reread", BLOCK_N=16, BLOCK_D=16, num_warps=4,
                      num_stages=1, LENGTHS_TO_ENDS="cumsum")
TAIL_WAYS = [(1, "reread_rows"), (1, "reread"), (2, "reread")]  # (TAIL_PASSES, TAIL_FIX)
SMALL_ROWS = dict(BLOCK_R=8, BLOCK_D=16, num_warps=1, num_stages=1)
SMALL_ENDS = dict(BLOCK_N=4, BLOCK_D=16, num_warps=1, num_stages=1, LENGTHS_TO_ENDS="cumsum")


def forward_calls():
    calls = []
    for reduce, (initial, index) in itertools.product(("sum", "mean", "max", "min"),
                                                      [(None, "lengths"), (1.5, "offsets"), (-2, "lengths")]):
        kwargs = {"lengths": LENGTHS} if index == "lengths" else {"offsets": OFFSETS.int()}
        calls.append(((DATA, reduce), dict(kwargs, initial=initial)))
    calls += [
        ((DATA.half(), "mean"), {"lengths": LENGTHS.int()}),
        ((DATA.bfloat16()[:, 0], "max"), {"offsets": OFFSETS}),
        ((torch.randn(8, 2, 3, generator=g), "sum"), {"lengths": LENGTHS, "initial": 0.25}),
        ((torch.randn(3, 8, generator=g).t(), "min"), {"lengths": LENGTHS}),
        ((torch.randn(10, 2, generator=g), "sum"), {"lengths": LENGTHS, "unsafe": True}),  # rows 8, 9 in no segment
        ((TIES, "max"), {"lengths": TIE_LENGTHS}),
        ((TIES, "min"), {"lengths": TIE_LENGTHS, "initial": 4.0}),
    ]
    return calls


def backward_calls():
    calls = []
    for (data, reduce), kwargs in forward_calls():
        output = FORWARD(data, reduce, **kwargs)
        kwargs = {k: v for k, v in kwargs.items() if k != "unsafe"}
        grad = torch.randn(output.shape, generator=g).to(data.dtype)
        calls.append(((grad, output, data, reduce), kwargs))
    return calls


CALLS = [(FORWARD, *c) for c in forward_calls()] + [(BACKWARD, *c) for c in backward_calls()]


def ids(value):
    return str(value).split(".")[1] if isinstance(value, torch._ops.OpOverload) else ""


@pytest.mark.parametrize("overload,args,kwargs", CALLS, ids=ids)
def test_implementations_match_reference(overload, args, kwargs, poisoned_allocations):
    problem = SEGMENT_REDUCE.problem(overload, args, kwargs)
    full = schema_values(overload, args, kwargs)
    want = SEGMENT_REDUCE.reference(problem, full)
    eager = overload(*args, **kwargs)
    triton_impl = SEGMENT_REDUCE.implementation("segment_reduce_triton")
    decomposition = SEGMENT_REDUCE.implementation("segment_reduce_decomposition")
    one_pass = SEGMENT_REDUCE.implementation("segment_reduce_backward_one_pass")
    rows = SEGMENT_REDUCE.implementation("segment_reduce_backward_rows")
    ends = SEGMENT_REDUCE.implementation("segment_reduce_ends")
    genome = triton_impl.genomes(problem)[0]
    runs = [(triton_impl, genome), (triton_impl, dict(genome, BLOCK_N=4))]
    runs += [(decomposition, genome) for genome in decomposition.genomes(problem)]
    runs += [(impl, genome) for impl, small in ((one_pass, SMALL_ONE_PASS), (rows, SMALL_ROWS),
                                                (ends, SMALL_ENDS))
             for genome in impl.genomes(problem)[:1] + [small] + [
                 dict(small, LENGTHS_TO_ENDS=way) for way in ("block_scan", "block_sums") if "LENGTHS_TO_ENDS" in small]
             if impl.supports(problem, genome) is None]
    for impl, genome in runs:
        got = impl.build(problem, genome)(*args, **kwargs)
        assert (got.shape, got.dtype) == (eager.shape, eager.dtype)
        compare(SEGMENT_REDUCE, problem, (got,), want, SEGMENT_REDUCE.reduced_extent(problem, full))


def test_ties_follow_aten_and_the_reference_is_eager():
    """Ties of the max share a positive gradient and each keep a negative one; NaN takes the gradient."""
    output = FORWARD(TIES, "max", lengths=TIE_LENGTHS)
    grad = torch.tensor([[-2.0, 4.0], [7.0, 7.0], [1.0, 1.0]])
    args = (grad, output, TIES, "max")
    problem = SEGMENT_REDUCE.problem(BACKWARD, args, {"lengths": TIE_LENGTHS})
    got = SEGMENT_REDUCE.implementation("segment_reduce_triton").build(problem, dict(
        BLOCK_N=4, BLOCK_D=16, num_warps=1, num_stages=1))(*args, lengths=TIE_LENGTHS)
    assert got.tolist() == [[0.0, 2.0], [-2.0, 2.0], [-2.0, 0.0], [1.0, 0.5], [0.0, 0.5]]
    full = schema_values(BACKWARD, args, {"lengths": TIE_LENGTHS})
    torch.testing.assert_close(SEGMENT_REDUCE.reference(problem, full)[0], got.double())


@pytest.mark.parametrize("tail_passes,fix", TAIL_WAYS)
@pytest.mark.parametrize("reduce", ["max", "min"])
def test_one_pass_gradient_past_the_held_rows(reduce, tail_passes, fix, poisoned_allocations):
    """Segments longer than the 64 rows one program holds: ties split across the held rows and the rows past
    them, ties wholly past them (a positive gradient shared, a negative one kept) beside columns whose one
    extreme lies past them, a NaN past them, an empty segment, and rows after the last segment (which get 0)."""
    lengths = torch.tensor([150, 0, 70, 3, 140])
    data = torch.randn(int(lengths.sum()) + 5, 3, generator=g)
    extreme = 9.0 if reduce == "max" else -9.0
    data[[10, 120], 0] = extreme  # segment 0's tie: one held row, one past them
    data[[150 + 20, 150 + 66], 1] = extreme  # segment 2's tie
    data[150 + 68, 2] = float("nan")  # past segment 2's held rows
    last = 150 + 70 + 3
    data[[last + 100, last + 130], 0] = extreme  # segment 4's ties, past its held rows
    data[[last + 90, last + 139], 1] = extreme
    data[last + 70, 2] = extreme  # segment 4's one extreme of column 2, past its held rows
    output = FORWARD(data, reduce, lengths=lengths, unsafe=True)
    grad = torch.tensor([[2.0, -1.0, 3.0], [1.0, 1.0, 1.0], [4.0, 4.0, -2.0], [-1.0, 5.0, 0.5], [6.0, -3.0, 7.0]])
    args = (grad, output, data, reduce)
    problem = SEGMENT_REDUCE.problem(BACKWARD, args, {"lengths": lengths})
    genome = dict(SMALL_ONE_PASS, TAIL_PASSES=tail_passes, TAIL_FIX=fix)
    got = SEGMENT_REDUCE.implementation("segment_reduce_backward_one_pass").build(problem, genome)(
        *args, lengths=lengths)
    torch.testing.assert_close(got, BACKWARD(*args, lengths=lengths))
    assert got[10, 0] == got[120, 0] == 1.0 and got[150 + 20, 1] == got[150 + 66, 1] == 2.0
    assert got[150 + 68, 2] == -2.0 and not got[-5:].any()
    assert got[last + 100, 0] == got[last + 130, 0] == 3.0 and got[last + 90, 1] == got[last + 139, 1] == -3.0
    assert got[last + 70, 2] == 7.0 and got[last:last + 140].count_nonzero() == 5


def _exact_bf16_max_gradient(data, lengths, negative_column: int, genome: dict) -> torch.Tensor:
    """The one-pass gradient of a bf16 segment max of `data` under `genome`, the output's gradient 1.5 but -2.0 in
    segment 0's `negative_column`, after asserting it equals ATen's bit for bit."""
    output = FORWARD(data, "max", lengths=lengths)
    grad = torch.full(output.shape, 1.5).bfloat16()
    grad[0, negative_column] = -2.0
    args = (grad, output, data, "max")
    problem = SEGMENT_REDUCE.problem(BACKWARD, args, {"lengths": lengths})
    got = SEGMENT_REDUCE.implementation("segment_reduce_backward_one_pass").build(problem, genome)(
        *args, lengths=lengths)
    torch.testing.assert_close(got, BACKWARD(*args, lengths=lengths), rtol=0, atol=0)
    return got


@pytest.mark.parametrize("tail_passes,fix", TAIL_WAYS)
def test_one_pass_gradient_shares_tail_ties_in_the_second_column_block(tail_passes, fix, poisoned_allocations):
    """bf16, 20 columns over two 16-column programs per segment: the second program of segment 1 rewrites its tail
    ties in two columns (divided), the first program's one extreme past the held rows keeps the whole gradient,
    segment 0's program leaves its tie alone where the gradient is negative, and segment 2's tie lies 300 rows
    apart (many tail steps)."""
    lengths = torch.tensor([80, 90, 400])
    data = torch.randn(570, 20, generator=g).bfloat16()
    data[[70, 75], 17] = 9.0  # segment 0, second block, gradient negative: not divided
    data[[80 + 66, 80 + 70, 80 + 89], 18] = 9.0  # segment 1, second block, all past the held rows
    data[[80 + 67, 80 + 80], 16] = 9.0  # and a second column of that program
    data[80 + 71, 2] = 9.0  # segment 1, first block: one extreme past the held rows
    data[[170 + 74, 170 + 374], 5] = 9.0  # segment 2, first block
    got = _exact_bf16_max_gradient(data, lengths, 17, dict(SMALL_ONE_PASS, TAIL_PASSES=tail_passes, TAIL_FIX=fix))
    assert got[70, 17] == got[75, 17] == -2.0 and got[80 + 71, 2] == 1.5
    assert got[80 + 66, 18] == got[80 + 70, 18] == got[80 + 89, 18] == 0.5 and got[244, 5] == got[544, 5] == 0.75
    assert got[80 + 67, 16] == got[80 + 80, 16] == 0.75


@pytest.mark.parametrize("fix", ["reread_rows", "reread"])
def test_one_pass_gradient_rewrites_a_tail_tied_in_every_column(fix, poisoned_allocations):
    """All-zero segments tie in every column (a ReLU's output can): the whole tail past the held rows is rewritten
    divided, beside a segment tied in one column past them, and rows before the first segment get 0."""
    offsets = torch.tensor([3, 103, 203])
    data = torch.randn(210, 20, generator=g)
    data[3:103] = 0.0  # segment 0: every row takes a share in every column
    data[[103 + 70, 103 + 90], 4] = 9.0  # segment 1: one column tied past the held rows
    output = FORWARD(data, "max", offsets=offsets, unsafe=True)
    grad = torch.full((2, 20), 2.0)
    args = (grad, output, data, "max")
    problem = SEGMENT_REDUCE.problem(BACKWARD, args, {"offsets": offsets})
    got = SEGMENT_REDUCE.implementation("segment_reduce_backward_one_pass").build(
        problem, dict(SMALL_ONE_PASS, TAIL_FIX=fix))(*args, offsets=offsets)
    torch.testing.assert_close(got, BACKWARD(*args, offsets=offsets), rtol=0, atol=0)
    assert (got[3:103] == 0.02).all() and got[103 + 70, 4] == got[103 + 90, 4] == 1.0 and not got[:3].any()


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_row_tile_gradient_across_tiles(reduce, poisoned_allocations):
    """Segments spanning several 8-row tiles: a tie split across tiles (a positive gradient shared), a tie with a
    negative gradient (kept), a three-way tie of NaN rows, a tie within one tile, an empty segment, rows before the
    first segment and after the last (which get 0)."""
    offsets = torch.tensor([2, 30, 30, 47, 60])
    data = torch.randn(64, 3, generator=g)
    extreme = 9.0 if reduce == "max" else -9.0
    data[[3, 12, 29], 0] = extreme  # segment 0: three tiles
    data[[31, 46], 1] = extreme  # segment 2
    data[[50, 51, 58], 2] = float("nan")  # segment 3
    data[[40, 41], 2] = extreme  # segment 2, rows 40 and 41 of one tile
    output = FORWARD(data, reduce, offsets=offsets, unsafe=True)
    grad = torch.tensor([[3.0, 1.0, -1.0], [1.0, 1.0, 1.0], [2.0, -4.0, 5.0], [0.5, 2.0, 6.0]])
    args = (grad, output, data, reduce)
    problem = SEGMENT_REDUCE.problem(BACKWARD, args, {"offsets": offsets})
    got = SEGMENT_REDUCE.implementation("segment_reduce_backward_rows").build(problem, SMALL_ROWS)(
        *args, offsets=offsets)
    torch.testing.assert_close(got, BACKWARD(*args, offsets=offsets))
    assert got[3, 0] == got[12, 0] == got[29, 0] == 1.0 and got[31, 1] == got[46, 1] == -4.0
    assert got[50, 2] == got[51, 2] == got[58, 2] == 2.0 and got[40, 2] == got[41, 2] == 2.5
    assert not got[:2].any() and not got[60:].any()


@pytest.mark.parametrize("way", ["block_scan", "block_sums"])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_segments_found_from_lengths_across_blocks(index_dtype, way, monkeypatch, poisoned_allocations):
    """300 segments (empty ones among them) over blocks of 64 lengths: the block scan sums up to 128 lengths before
    its block a step (two steps for the last block), and with block sums a segment of the fifth block adds four
    blocks' sums, 64 a step (one step); the ends forward and the one-pass gradient match ATen."""
    from torch_kevolve.families.segment_reduce import lengths_ends

    monkeypatch.setattr(lengths_ends, "SCAN_BLOCK", 64)
    monkeypatch.setattr(lengths_ends, "SCAN_BEFORE", 128)
    monkeypatch.setattr(lengths_ends, "SUMS_BLOCK", 64)
    lengths = torch.randint(0, 4, (300,), generator=g).to(index_dtype)
    lengths[[0, 63, 64, 299]] = torch.tensor([0, 3, 2, 2], dtype=index_dtype)  # the first segment empty
    data = torch.randn(int(lengths.sum()), 5, generator=g)
    data[3:5] = data[2]  # a tie in segment 1 or 2
    ends = SEGMENT_REDUCE.implementation("segment_reduce_ends")
    one_pass = SEGMENT_REDUCE.implementation("segment_reduce_backward_one_pass")
    for reduce in ("sum", "max"):
        problem = SEGMENT_REDUCE.problem(FORWARD, (data, reduce), {"lengths": lengths})
        got = ends.build(problem, dict(SMALL_ENDS, LENGTHS_TO_ENDS=way))(data, reduce, lengths=lengths)
        torch.testing.assert_close(got, FORWARD(data, reduce, lengths=lengths), rtol=1e-6, atol=1e-6)
    output = FORWARD(data, "max", lengths=lengths)
    grad = torch.randn(output.shape, generator=g)
    args = (grad, output, data, "max")
    problem = SEGMENT_REDUCE.problem(BACKWARD, args, {"lengths": lengths})
    got = one_pass.build(problem, dict(SMALL_ONE_PASS, LENGTHS_TO_ENDS=way))(*args, lengths=lengths)
    torch.testing.assert_close(got, BACKWARD(*args, lengths=lengths), rtol=0, atol=0)


def test_block_sums_past_one_step_of_them(monkeypatch, poisoned_allocations):
    """Block sums of 4 lengths over 45 segments: a program past the 16th block adds its blocks' sums four at a time,
    over several steps (11 blocks, 3 steps for the last segment)."""
    from torch_kevolve.families.segment_reduce import lengths_ends

    monkeypatch.setattr(lengths_ends, "SUMS_BLOCK", 4)
    lengths = torch.randint(0, 5, (45,), generator=g)
    data = torch.randn(int(lengths.sum()), 3, generator=g)
    problem = SEGMENT_REDUCE.problem(FORWARD, (data, "sum"), {"lengths": lengths})
    got = SEGMENT_REDUCE.implementation("segment_reduce_ends").build(
        problem, dict(SMALL_ENDS, LENGTHS_TO_ENDS="block_sums"))(data, "sum", lengths=lengths)
    torch.testing.assert_close(got, FORWARD(data, "sum", lengths=lengths), rtol=1e-6, atol=1e-6)


def test_other_ways_to_ends_only_for_lengths():
    """LENGTHS_TO_ENDS other than the cumsum is refused where segments come as offsets, by both kernels that read
    segment ends: their default way, the block scan, gives way to it there."""
    output = FORWARD(DATA, "max", offsets=OFFSETS)
    for impl, overload, args, small in (("segment_reduce_ends", FORWARD, (DATA, "max"), SMALL_ENDS),
                                        ("segment_reduce_backward_one_pass", BACKWARD,
                                         (torch.ones_like(output), output, DATA, "max"), SMALL_ONE_PASS)):
        impl = SEGMENT_REDUCE.implementation(impl)
        by_offsets = SEGMENT_REDUCE.problem(overload, args, {"offsets": OFFSETS})
        by_lengths = SEGMENT_REDUCE.problem(overload, args, {"lengths": LENGTHS})
        for way in ("block_scan", "block_sums"):
            assert "offsets" in impl.supports(by_offsets, dict(small, LENGTHS_TO_ENDS=way))
            assert impl.supports(by_lengths, dict(small, LENGTHS_TO_ENDS=way)) is None
        assert {genome["LENGTHS_TO_ENDS"] for genome in impl.genomes(by_offsets)} == {"cumsum"}
        assert impl.default_genome(by_lengths)["LENGTHS_TO_ENDS"] == "block_scan"
        assert impl.default_genome(by_offsets)["LENGTHS_TO_ENDS"] == "cumsum"


def test_other_ways_to_ends_only_over_thousands_of_segments():
    """What a program of the block scan or the block sums reads grows with the segments before it: past four loads in
    a row (16384 segments for the block scan, 65536 for the block sums) the way is refused, and the default genome
    takes the cumsum."""
    ends = SEGMENT_REDUCE.implementation("segment_reduce_ends")
    for segments, refused in ((16384, set()), (16385, {"block_scan"}), (65537, {"block_scan", "block_sums"})):
        lengths = torch.empty(segments, dtype=torch.long, device="meta")
        problem = SEGMENT_REDUCE.problem(FORWARD, (torch.empty(10, 4, device="meta"), "sum"), {"lengths": lengths})
        assert {way for way in ("cumsum", "block_scan", "block_sums")
                if ends.supports(problem, dict(SMALL_ENDS, LENGTHS_TO_ENDS=way))} == refused
        assert ends.default_genome(problem)["LENGTHS_TO_ENDS"] == ("cumsum" if refused else "block_scan")


def test_default_triton_kernels_ends_forward_one_pass_for_max_and_min_gradients():
    output = {reduce: FORWARD(DATA, reduce, lengths=LENGTHS) for reduce in ("sum", "mean", "max", "min")}
    for reduce in output:
        for overload, args in ((FORWARD, (DATA, reduce)), (BACKWARD, (torch.ones_like(output[reduce]), output[reduce],
                                                                      DATA, reduce))):
            problem = SEGMENT_REDUCE.problem(overload, args, {"lengths": LENGTHS})
            impl, genome = SEGMENT_REDUCE.default_kernel(problem, Abstraction.TRITON)
            if overload is FORWARD:
                assert impl.name == "segment_reduce_ends"
            else:
                one_pass = reduce in ("max", "min")
                assert impl.name == ("segment_reduce_backward_one_pass" if one_pass else "segment_reduce_triton")
            assert impl.supports(problem, genome) is None


def test_one_pass_takes_only_max_and_min_gradients_that_fit_registers():
    one_pass = SEGMENT_REDUCE.implementation("segment_reduce_backward_one_pass")
    output = FORWARD(DATA, "sum", lengths=LENGTHS)
    for overload, args in ((FORWARD, (DATA, "max")), (BACKWARD, (torch.ones_like(output), output, DATA, "sum"))):
        problem = SEGMENT_REDUCE.problem(overload, args, {"lengths": LENGTHS})
        assert "gradient of max and min" in one_pass.supports(problem, SMALL_ONE_PASS)
        assert one_pass.genomes(problem) == []
    wide = SEGMENT_REDUCE.problem(BACKWARD, (torch.ones(5, 64), torch.ones(5, 64), torch.ones(8, 64), "max"),
                                  {"lengths": LENGTHS})
    assert one_pass.supports(wide, dict(SMALL_ONE_PASS, BLOCK_D=64)) is None
    assert "registers" in one_pass.supports(wide, dict(SMALL_ONE_PASS, BLOCK_D=64, RESIDENT_ROWS=512))
    assert one_pass.supports(wide, dict(SMALL_ONE_PASS, TAIL_FIX="reread_rows")) is None
    assert "TAIL_PASSES 1" in one_pass.supports(wide, dict(SMALL_ONE_PASS, TAIL_PASSES=2, TAIL_FIX="reread_rows"))
    huge = SEGMENT_REDUCE.problem(BACKWARD, tuple(torch.empty(n, 1 << 22, device="meta") for n in (5, 5, 8)) + ("max",),
                                  {"lengths": LENGTHS})
    held = dict(SMALL_ONE_PASS, BLOCK_D=32, num_warps=16)
    assert one_pass.supports(huge, dict(held, RESIDENT_ROWS=256)) is None  # 2^30 offsets
    assert "int32" in one_pass.supports(huge, dict(held, RESIDENT_ROWS=512))


@pytest.mark.parametrize("index", [0, 6, 23, 25, 34])
def test_generated_inputs(index):
    overload, args, kwargs = CALLS[index]
    problem = SEGMENT_REDUCE.problem(overload, args, kwargs)
    for impl in SEGMENT_REDUCE.implementations:
        if not impl.genomes(problem):
            continue
        fn = impl.build(problem, impl.genomes(problem)[0])
        check_kernel(SEGMENT_REDUCE, problem, fn, torch.device("cpu"), seeds=(0, 1), dists=DISTRIBUTIONS)


def test_problem_and_registry():
    problem = SEGMENT_REDUCE.problem(FORWARD, (torch.randn(8, 2, 3), "mean"), {"offsets": OFFSETS, "initial": 1})
    assert tuple(problem.dim(n) for n in ("segments", "rows", "inner")) == (5, 8, 6)
    assert (problem.param("initial"), problem.param("by_lengths"), problem.param("inner_rank")) == (1.0, False, 2)
    assert family_for(BACKWARD) is SEGMENT_REDUCE and SEGMENT_REDUCE.bytes_moved(problem) > 0


@pytest.mark.parametrize("args,kwargs,reason", [
    ((DATA, "prod"), {"lengths": LENGTHS}, "prod"),
    ((DATA, "sum"), {"lengths": torch.tensor([1, 2, 0])[None].expand(8, 3), "axis": 1}, "axis 0"),
    ((DATA, "sum"), {"lengths": LENGTHS, "offsets": OFFSETS}, "exactly one"),
    ((DATA, "sum"), {}, "exactly one"),
    ((DATA, "sum"), {"lengths": LENGTHS.float()}, "int32/int64"),
    ((DATA.double(), "sum"), {"lengths": LENGTHS}, "float64"),
    ((DATA, "sum"), {"lengths": LENGTHS[None]}, "1-D"),
])
def test_unsupported_calls(args, kwargs, reason):
    with pytest.raises(Unsupported, match=reason):
        SEGMENT_REDUCE.problem(FORWARD, args, kwargs)
