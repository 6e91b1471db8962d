"""The stack forms of the batched embedding bags (run through the Triton interpreter, fp32): stack_forward's generated
kernel, which pools every table's bags straight into the [samples, heads + tables, dim] stack behind the head rows,
and stack_backward's runs and fill-runs algorithms, which read the stack's gradient in place, against independent float64
references (one-hot matrix products: pooled = bags @ one_hot(indices) @ weight, mean rows divided by the bag size;
dense weight grad = one_hotᵀ @ bagsᵀ @ grad rows): 0, 1 and 2 heads (one of them a transposed, non-contiguous
tensor), sum and mean, int32 and int64 indices and offsets, include_last_offset, an empty bag, a bag longer than
BLOCK_N, a row named many times, a table of no indices, contiguous and strided stack gradients. Also what they
refuse (a gradient of the wrong row count, more than one bag per program, too many tables for one launch) and the
LAYOUT_FORMS entries of stack_forms.py: build() on CPU goes through the custom ops, build() of an unfit genome says
why, as_inner() gives the inner ops' per-table results."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tests.families.conftest import INT_POISON
from tests.families.bag_references import bag_tensors, pooling
from torch_kevolve.families import EMBEDDING_BAGS, EMBEDDING_BAGS_BACKWARD, LAYOUT_FORMS
from torch_kevolve.families.embedding_bag.ops import genome_json
from torch_kevolve.families.embedding_bags import forward_triton, stack_forms
from torch_kevolve.families.embedding_bags.calls import BACKWARD, FORWARD
from torch_kevolve.families.embedding_bags.stack_forward import embedding_bags_stack_forward, unfit

STACK = torch.ops.kevolve.embedding_bags_stack.default
STACK_BACKWARD = torch.ops.kevolve.embedding_bags_stack_backward.default
SAMPLES, DIM = 4, 16
ROWS = (9, 6, 5)
# Per table: each sample's bag as a list of rows. Table 0: an empty bag, an 11-index bag (over BLOCK_N = 8) naming
# row 3 seven times; table 1: no indices at all; table 2: bags of one to three rows.
BAGS = ([[0, 8, 3], [], [3, 3, 1, 3, 3, 7, 3, 2, 3, 3, 5], [8, 0]],
        [[], [], [], []],
        [[4], [0, 4], [2, 2, 1], [3]])
FORWARD_GENOME = dict(BLOCK_N=8, BLOCK_D=16, BAGS_PER_PROGRAM=1, num_warps=1, num_stages=1)
RUNS_GENOME = dict(BLOCK_N=1, BLOCK_D=16, ITEMS_PER_PROGRAM=4, num_warps=1, num_stages=1)  # runs go past 4 slots




def bag_inputs(index_dtype=torch.int64, include_last_offset=False):
    return bag_tensors(BAGS, index_dtype, include_last_offset)


def weights(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(rows, DIM, generator=g) for rows in ROWS]


def heads_of(count, seed=1):
    """`count` head rows [SAMPLES, DIM]: the first contiguous, the second a transposed [DIM, SAMPLES] tensor."""
    g = torch.Generator().manual_seed(seed)
    made = [torch.randn(SAMPLES, DIM, generator=g), torch.randn(DIM, SAMPLES, generator=g).t()]
    assert not made[1].is_contiguous()
    return made[:count]




def reference_stack(heads, weight_list, mode):
    """torch.stack([*heads, *pooled], 1) in float64, pooled by the one-hot products."""
    pooled = [pooling(bags, w.shape[0], mode) @ w.double() for bags, w in zip(BAGS, weight_list)]
    return torch.stack([h.double() for h in heads] + pooled, 1)


def reference_weight_grads(grad, heads, mode):
    """Each table's dense weight gradient in float64: poolingᵀ @ the stack gradient's rows of that table."""
    return [pooling(bags, rows, mode).T @ grad[:, heads + t].double() for t, (bags, rows) in enumerate(zip(BAGS, ROWS))]


@pytest.fixture
def poisoned(monkeypatch, poisoned_allocations):
    """torch.empty (conftest) and Tensor.new_empty start as NaN / INT_POISON, so no unwritten row passes for zero."""
    new_empty = torch.Tensor.new_empty

    def poisoned_new_empty(self, *args, **kwargs):
        t = new_empty(self, *args, **kwargs)
        return t.fill_(float("nan") if t.is_floating_point() else INT_POISON)

    monkeypatch.setattr(torch.Tensor, "new_empty", poisoned_new_empty)


@pytest.mark.parametrize("heads", [0, 1, 2])
@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
@pytest.mark.parametrize("include_last_offset", [False, True])
def test_stack_forward_matches_one_hot_products(heads, mode, index_dtype, include_last_offset, poisoned,
                                                assert_matches):
    indices, offsets = bag_inputs(index_dtype, include_last_offset)
    head_rows, weight_list = heads_of(heads), weights()
    got = embedding_bags_stack_forward(head_rows, weight_list, indices, offsets, mode, include_last_offset,
                                       FORWARD_GENOME)
    assert (got.shape, got.dtype) == ((SAMPLES, heads + len(ROWS), DIM), torch.float32) and got.is_contiguous()
    assert_matches(got, reference_stack(head_rows, weight_list, mode), reach=11, scale=4)
    for h in range(heads):  # copied exactly
        assert torch.equal(got[:, h], head_rows[h])
    assert torch.equal(got[1, heads], torch.zeros(DIM)) and torch.equal(got[:, heads + 1], torch.zeros(SAMPLES, DIM))


def test_stack_forward_masks_a_partial_dim_tile(poisoned, assert_matches):
    """dim 20 over BLOCK_D 16: the second tile of every row (head and pooled) is masked past the row's end."""
    indices, offsets = bag_inputs()
    g = torch.Generator().manual_seed(3)
    weight_list = [torch.randn(rows, 20, generator=g) for rows in ROWS]
    head_rows = [torch.randn(20, SAMPLES, generator=g).t()]
    got = embedding_bags_stack_forward(head_rows, weight_list, indices, offsets, 1, False, FORWARD_GENOME)
    assert_matches(got, reference_stack(head_rows, weight_list, 1), reach=11, scale=4)


def stack_gradient(layout, rows_per_sample, seed=2):
    """A [SAMPLES, rows_per_sample, DIM] gradient: contiguous; transposed from [SAMPLES, DIM, rows] (sample stride not
    a whole number of row strides: copied); permuted from [DIM, SAMPLES, rows] (rows of stride 1 and samples of
    stride rows, so read in place, with a dim stride of SAMPLES * rows)."""
    g = torch.Generator().manual_seed(seed)
    if layout == "contiguous":
        return torch.randn(SAMPLES, rows_per_sample, DIM, generator=g)
    if layout == "transposed":
        grad = torch.randn(SAMPLES, DIM, rows_per_sample, generator=g).transpose(1, 2)
        assert grad.stride(0) != rows_per_sample * grad.stride(1)
        return grad
    grad = torch.randn(DIM, SAMPLES, rows_per_sample, generator=g).permute(1, 2, 0)
    assert grad.stride(0) == rows_per_sample * grad.stride(1) and not grad.is_contiguous()
    return grad


STACK_BACKWARDS = stack_forms.STACK_BACKWARDS


@pytest.mark.parametrize("algorithm", sorted(STACK_BACKWARDS))
@pytest.mark.parametrize("heads", [0, 2])
@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "permuted"])
def test_stack_backwards_match_one_hot_products(algorithm, heads, mode, layout, poisoned, assert_matches):
    indices, offsets = bag_inputs(torch.int32 if mode else torch.int64)
    grad = stack_gradient(layout, heads + len(ROWS))
    before = grad.clone()
    got = STACK_BACKWARDS[algorithm](grad, heads, indices, offsets, list(ROWS), mode, RUNS_GENOME)
    assert [(tuple(g.shape), g.dtype) for g in got] == [((rows, DIM), torch.float32) for rows in ROWS]
    for gt, want in zip(got, reference_weight_grads(grad, heads, mode)):
        assert_matches(gt, want, reach=11, scale=4)
    assert torch.equal(got[1], torch.zeros(ROWS[1], DIM))  # table 1 names no row: all zeros, none left unwritten
    assert torch.equal(grad, before)


@pytest.mark.parametrize("algorithm", sorted(STACK_BACKWARDS))
def test_stack_backward_refuses_a_gradient_of_another_row_count(algorithm):
    indices, offsets = bag_inputs()
    for heads, rows_per_sample in ((2, 4), (0, 4), (1, 3)):
        with pytest.raises(ValueError, match="rows per sample"):
            STACK_BACKWARDS[algorithm](torch.zeros(SAMPLES, rows_per_sample, DIM), heads, indices, offsets,
                                       list(ROWS), 0, RUNS_GENOME)


def test_forward_refuses_more_than_one_bag_per_program_and_unfit_says_why():
    indices, offsets = bag_inputs()
    genome = dict(FORWARD_GENOME, BAGS_PER_PROGRAM=2)
    reason = unfit(genome, len(ROWS))
    assert isinstance(reason, str) and "one bag per program" in reason
    with pytest.raises(ValueError, match="one bag per program"):
        embedding_bags_stack_forward([], weights(), indices, offsets, 0, False, genome)
    assert unfit(FORWARD_GENOME, len(ROWS)) is None


def test_more_tables_than_one_launch_takes_are_unfit():
    limit = forward_triton.MAX_TABLES_PER_LAUNCH
    assert unfit(FORWARD_GENOME, limit) is None
    reason = unfit(FORWARD_GENOME, limit + 1)
    assert isinstance(reason, str) and str(limit) in reason
    many = limit + 1
    with pytest.raises(ValueError, match=str(limit)):
        embedding_bags_stack_forward([], [torch.zeros(2, DIM)] * many, [torch.zeros(1, dtype=torch.long)] * many,
                                     [torch.zeros(SAMPLES, dtype=torch.long)] * many, 0, False, FORWARD_GENOME)


class Calls(TorchDispatchMode):
    """The ops dispatched (outermost calls only), by name."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func))
        return func(*args, **(kwargs or {}))


def forward_form():
    return LAYOUT_FORMS[(STACK, "embedding_bags_triton")]


def backward_form(implementation="embedding_bags_backward_runs"):
    return LAYOUT_FORMS[(STACK_BACKWARD, implementation)]


def test_layout_forms_are_keyed_by_the_layout_op_and_the_winning_implementation():
    assert forward_form() is stack_forms.LAYOUT_FORMS[(stack_forms.STACK, "embedding_bags_triton")]
    assert backward_form() is stack_forms.LAYOUT_FORMS[(stack_forms.STACK_BACKWARD, "embedding_bags_backward_runs")]
    assert EMBEDDING_BAGS.implementation("embedding_bags_triton") is not None
    assert EMBEDDING_BAGS_BACKWARD.implementation("embedding_bags_backward_runs") is not None


@pytest.mark.parametrize("mode,include_last_offset,index_dtype", [(0, False, torch.int64), (1, True, torch.int32)])
def test_forward_layout_form_builds_through_the_custom_op(mode, include_last_offset, index_dtype, assert_matches):
    indices, offsets = bag_inputs(index_dtype, include_last_offset)
    head_rows, weight_list = heads_of(2), weights(4)
    problem = EMBEDDING_BAGS.problem(FORWARD, (weight_list, indices, offsets, mode, include_last_offset), {})
    fn = forward_form().build(problem, FORWARD_GENOME)
    assert callable(fn)
    with Calls() as calls:
        got = fn(head_rows, weight_list, indices, offsets, mode, include_last_offset)
    assert calls.names == ["kevolve.embedding_bags_stack_triton.default"]
    assert_matches(got, reference_stack(head_rows, weight_list, mode), reach=11, scale=4)
    inner = forward_form().as_inner(fn)(weight_list, indices, offsets, mode, include_last_offset)
    want = reference_stack([], weight_list, mode)
    assert len(inner) == len(ROWS)
    for t, pooled in enumerate(inner):
        assert pooled.shape == (SAMPLES, DIM)
        assert_matches(pooled, want[:, t], reach=11, scale=4)


def test_forward_layout_form_of_an_unfit_genome_is_the_reason():
    indices, offsets = bag_inputs()
    problem = EMBEDDING_BAGS.problem(FORWARD, (weights(), indices, offsets, 0, False), {})
    reason = forward_form().build(problem, dict(FORWARD_GENOME, BAGS_PER_PROGRAM=2))
    assert isinstance(reason, str) and "one bag per program" in reason


@pytest.mark.parametrize("implementation", ["embedding_bags_backward_runs", "embedding_bags_backward_fill_runs"])
@pytest.mark.parametrize("mode,include_last_offset,index_dtype", [(0, True, torch.int64), (1, False, torch.int32)])
def test_backward_layout_form_builds_through_the_custom_op(implementation, mode, include_last_offset, index_dtype,
                                                           assert_matches):
    indices, offsets = bag_inputs(index_dtype, include_last_offset)
    grad = stack_gradient("transposed", 2 + len(ROWS), seed=5)
    args = ([grad[:, 2 + t] for t in range(len(ROWS))], indices, offsets, list(ROWS), mode, include_last_offset)
    problem = EMBEDDING_BAGS_BACKWARD.problem(BACKWARD, args, {})
    fn = backward_form(implementation).build(problem, RUNS_GENOME)
    assert callable(fn)
    with Calls() as calls:
        got = fn(grad, 2, indices, offsets, list(ROWS), mode, include_last_offset)
    assert calls.names == ["kevolve.embedding_bags_stack_backward_bag_tiles.default"]
    want = reference_weight_grads(grad, 2, mode)
    assert len(got) == len(ROWS)
    for gt, w in zip(got, want):
        assert_matches(gt, w, reach=11, scale=4)
    # as_inner: the inner op's per-table grads in, the per-table weight grads out (heads 0, grads stacked)
    inner = backward_form(implementation).as_inner(fn)(*args)
    assert len(inner) == len(ROWS)
    for gt, w in zip(inner, want):
        assert_matches(gt, w, reach=11, scale=4)


def test_stack_custom_ops_pass_opcheck():
    indices, offsets = bag_inputs(torch.int32, True)
    torch.library.opcheck(stack_forms.embedding_bags_stack_triton,
                          (heads_of(2), weights(), indices, offsets, 1, True, genome_json(FORWARD_GENOME)))
    torch.library.opcheck(stack_forms.embedding_bags_stack_backward_bag_tiles,
                          (stack_gradient("contiguous", 5), 2, indices, offsets, list(ROWS), 0, "fill_runs",
                           genome_json(RUNS_GENOME)))
