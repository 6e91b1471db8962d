"""The pattern ops kevolve::embedding_bags_stack (torch.stack([*heads, *embedding_bags(...)], 1)) and
kevolve::embedding_bags_stack_backward (every table's dense weight gradient from the stack's gradient) against
independent float64 references (one-hot matrix products: pooled = bags @ one_hot(indices) @ weight, mean rows over
bag sizes; weight grad = poolingᵀ @ the gradient's rows of that table), with 0, 1 and 2 heads (one a transposed
tensor), sum and mean, include_last_offset, int32 and int64 indices, empty bags and a table of no indices; their
fakes; the autograd formula by gradcheck in float64 for heads and weights (and its backward graph holding the
backward op); the INNER_CALLS entries offering both as the plain batched ops; opcheck of both ops."""
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from tests.patterns.test_pattern_ops import aot_targets
from tests.families.bag_references import bag_tensors, pooling
from torch_kevolve.patterns.ops import INNER_CALLS, MEANINGS

STACK = torch.ops.kevolve.embedding_bags_stack.default
STACK_BACKWARD = torch.ops.kevolve.embedding_bags_stack_backward.default
SAMPLES, DIM = 3, 5
ROWS = (5, 8, 4)
BAGS = ([[0, 4, 4], [], [2]],  # per table, each sample's bag: an empty bag, a repeated row
        [[7, 1, 1, 1], [0], [3, 3]],
        [[], [], []])  # no indices at all






def bag_inputs(index_dtype=torch.int64, include_last_offset=False):
    return bag_tensors(BAGS, index_dtype, include_last_offset)


def reference_stack(heads, weights, mode):
    return torch.stack([h.double() for h in heads]
                       + [pooling(bags, w.shape[0], mode) @ w.double() for bags, w in zip(BAGS, weights)], 1)


def reference_weight_grads(grad, heads, mode):
    return [pooling(bags, rows, mode).T @ grad[:, heads + t].double() for t, (bags, rows) in enumerate(zip(BAGS, ROWS))]


def make(heads, dtype=torch.float64, seed=0, requires_grad=False):
    """(head rows, weights): the second head a transposed [DIM, SAMPLES] tensor."""
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(rows, DIM, generator=g, dtype=dtype).requires_grad_(requires_grad) for rows in ROWS]
    made = [torch.randn(SAMPLES, DIM, generator=g, dtype=dtype), torch.randn(DIM, SAMPLES, generator=g, dtype=dtype).t()]
    return [h.requires_grad_(requires_grad) for h in made[:heads]], weights


@pytest.mark.parametrize("heads", [0, 1, 2])
@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("include_last_offset", [False, True])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_stack_op_matches_one_hot_products(heads, mode, include_last_offset, index_dtype):
    head_rows, weights = make(heads)
    indices, offsets = bag_inputs(index_dtype, include_last_offset)
    out = STACK(head_rows, weights, indices, offsets, mode, include_last_offset)
    assert (out.shape, out.dtype) == ((SAMPLES, heads + len(ROWS), DIM), torch.float64)
    torch.testing.assert_close(out, reference_stack(head_rows, weights, mode))


@pytest.mark.parametrize("heads", [0, 2])
@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("include_last_offset", [False, True])
@pytest.mark.parametrize("strided", [False, True])
def test_stack_backward_op_matches_one_hot_products(heads, mode, include_last_offset, strided):
    """The gradient contiguous, or a [samples, dim, rows] tensor transposed; the heads' rows are not read."""
    g = torch.Generator().manual_seed(heads + 2 * mode)
    rows = heads + len(ROWS)
    grad = (torch.randn(SAMPLES, DIM, rows, generator=g, dtype=torch.float64).transpose(1, 2) if strided else
            torch.randn(SAMPLES, rows, DIM, generator=g, dtype=torch.float64))
    indices, offsets = bag_inputs(torch.int32 if include_last_offset else torch.int64, include_last_offset)
    got = STACK_BACKWARD(grad, heads, indices, offsets, list(ROWS), mode, include_last_offset)
    want = reference_weight_grads(grad, heads, mode)
    assert [tuple(w.shape) for w in got] == [(r, DIM) for r in ROWS]
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(got[2], torch.zeros(ROWS[2], DIM, dtype=torch.float64))


def test_fakes_match_real_outputs():
    head_rows, weights = make(2, torch.float32)
    indices, offsets = bag_inputs(torch.int32, True)
    real = STACK(head_rows, weights, indices, offsets, 1, True)
    mode = FakeTensorMode()
    fake = lambda ts: [mode.from_tensor(t) for t in ts]  # noqa: E731
    with mode:
        out = STACK(fake(head_rows), fake(weights), fake(indices), fake(offsets), 1, True)
        no_heads = STACK([], fake(weights), fake(indices), fake(offsets), 0, True)
        grads = STACK_BACKWARD(out, 2, fake(indices), fake(offsets), list(ROWS), 1, True)
    assert (out.shape, out.dtype, out.stride()) == (real.shape, real.dtype, real.stride())
    assert out.shape == (SAMPLES, 2 + len(ROWS), DIM) and no_heads.shape == (SAMPLES, len(ROWS), DIM)
    assert [(tuple(w.shape), w.dtype) for w in grads] == [((r, DIM), torch.float32) for r in ROWS]


@pytest.mark.parametrize("heads", [0, 1, 2])
@pytest.mark.parametrize("mode", [0, 1])
def test_autograd_formula_passes_gradcheck(heads, mode):
    head_rows, weights = make(heads, requires_grad=True, seed=3)
    indices, offsets = bag_inputs(torch.int32 if mode else torch.int64, include_last_offset=bool(mode))

    def fn(*tensors):
        return STACK(list(tensors[:heads]), list(tensors[heads:]), indices, offsets, mode, bool(mode))

    assert torch.autograd.gradcheck(fn, (*head_rows, *weights))


def test_gradients_match_one_hot_products():
    """The heads get their slices of the stack's gradient, the weights poolingᵀ @ theirs."""
    head_rows, weights = make(2, requires_grad=True, seed=4)
    indices, offsets = bag_inputs()
    grad = torch.randn(SAMPLES, 2 + len(ROWS), DIM, dtype=torch.float64)
    STACK(head_rows, weights, indices, offsets, 1, False).backward(grad)
    for h, head in enumerate(head_rows):
        torch.testing.assert_close(head.grad, grad[:, h])
    for w, want in zip(weights, reference_weight_grads(grad, 2, 1)):
        torch.testing.assert_close(w.grad, want)


def test_backward_graph_holds_the_stack_backward_op():
    head_rows, weights = make(1, torch.float32, requires_grad=True)
    indices, offsets = bag_inputs()
    seen = aot_targets(lambda h, a, b, c: STACK([h], [a, b, c], indices, offsets, 0, False), *head_rows, *weights)
    assert "kevolve.embedding_bags_stack.default" in seen and "kevolve.embedding_bags_stack_backward.default" in seen


def test_inner_calls_offer_the_plain_batched_ops():
    """embedding_bags_stack's inner call is embedding_bags of its tables (the pooled rows, the stack's rows past the
    heads); embedding_bags_stack_backward's is embedding_bags_backward of the gradient's table rows."""
    head_rows, weights = make(2)
    indices, offsets = bag_inputs(torch.int32, True)
    inner = INNER_CALLS[STACK]
    assert inner.overload is torch.ops.kevolve.embedding_bags.default
    arguments = inner.arguments(head_rows, weights, indices, offsets, 1, True)
    want = reference_stack([], weights, 1)
    for t, pooled in enumerate(inner.overload(*arguments)):
        torch.testing.assert_close(pooled, want[:, t])

    grad = torch.randn(SAMPLES, 2 + len(ROWS), DIM, dtype=torch.float64)
    inner = INNER_CALLS[STACK_BACKWARD]
    assert inner.overload is torch.ops.kevolve.embedding_bags_backward.default
    arguments = inner.arguments(grad, 2, indices, offsets, list(ROWS), 0, True)
    assert all(torch.equal(g, grad[:, 2 + t]) for t, g in enumerate(arguments[0]))
    for got, want in zip(inner.overload(*arguments), reference_weight_grads(grad, 2, 0)):
        torch.testing.assert_close(got, want)
    assert MEANINGS[STACK] is not None and MEANINGS[STACK_BACKWARD] is not None


def test_ops_pass_opcheck():
    head_rows, weights = make(2, torch.float32, requires_grad=True)
    indices, offsets = bag_inputs(torch.int32, True)
    torch.library.opcheck(STACK, (head_rows, weights, indices, offsets, 1, True))
    grad = torch.randn(SAMPLES, 2 + len(ROWS), DIM)
    torch.library.opcheck(STACK_BACKWARD, (grad, 2, indices, offsets, list(ROWS), 0, True))


@pytest.mark.parametrize("head", [torch.zeros(SAMPLES, DIM, dtype=torch.float32), torch.zeros(SAMPLES, 1, DIM)],
                         ids=["another dtype", "3-D"])
def test_a_head_not_of_the_tables_kind_is_refused(head):
    """torch.stack would promote a head of another dtype, so the op's value would not be the fake's."""
    _, weights = make(0)
    indices, offsets = bag_inputs()
    with pytest.raises(ValueError, match="a head must be"):
        STACK([head], weights, indices, offsets, 0, False)
    with FakeTensorMode() as mode, pytest.raises(ValueError, match="a head must be"):
        STACK([mode.from_tensor(head)], [mode.from_tensor(w) for w in weights],
              [mode.from_tensor(i) for i in indices], [mode.from_tensor(o) for o in offsets], 0, False)
