"""The pre-grad pattern pass finds the DLRM dot interaction (fp32 and under bf16 autocast), groups of
F.embedding_bag calls (and their pooled rows stacked behind head rows), WuKong's factorization-machine product
x @ (xᵀ @ y) and F.embedding lookups of trained tables in Dynamo's graph and replaces them by
kevolve::pairwise_dots, kevolve::embedding_bags (kevolve::embedding_bags_stack), kevolve::fm_interaction and
kevolve::embedding with the same value (and gradients), and the seq model's attention
input and score head by a broadcast linear and a product-sum (tests/patterns/test_broadcast_linear.py,
test_score_head.py); anything not exactly the pattern is left alone."""
import operator

import pytest
import torch
import torch.nn.functional as F

from benchmarks.models.dcnv2 import dcnv2_tiny
from benchmarks.models.dlrm import dlrm_bf16_tiny, dlrm_tiny, small_dlrm
from benchmarks.models.seq import seq_tiny
from torch_kevolve.patterns import rewrite_patterns

PAIRWISE_DOTS = torch.ops.kevolve.pairwise_dots.default
EMBEDDING_BAGS = torch.ops.kevolve.embedding_bags.default
EMBEDDING_BAGS_STACK = torch.ops.kevolve.embedding_bags_stack.default
FM_INTERACTION = torch.ops.kevolve.fm_interaction.default
EMBEDDING = torch.ops.kevolve.embedding.default


def dynamo_graph(fn, inputs, rewrite=True):
    """Compile `fn` with a backend that runs the pattern pass; (patterns replaced, graph targets, result)."""
    found = {}

    def backend(gm, example_inputs):
        found["replaced"] = rewrite_patterns(gm) if rewrite else []
        found["targets"] = [n.target for n in gm.graph.nodes if n.op in ("call_function", "call_method")]
        return gm.forward

    torch._dynamo.reset()
    result = torch.compile(fn, backend=backend)(*inputs)
    torch._dynamo.reset()
    return found["replaced"], found["targets"], result


def replaced_against_eager(fn, inputs, **tolerance) -> tuple[list, list]:
    """(patterns replaced, graph targets) of `fn` compiled with the pattern pass; its value, and the gradients of
    the inputs that require them, checked against eager on copies of the inputs (`tolerance`: assert_close's)."""
    replaced, targets, got = dynamo_graph(fn, inputs)
    want_inputs = [x.detach().clone().requires_grad_(x.requires_grad) for x in inputs]
    want = fn(*want_inputs)
    torch.testing.assert_close(got, want)
    got.square().sum().backward()
    want.square().sum().backward()
    for a, b in zip(inputs, want_inputs):
        if a.requires_grad:
            torch.testing.assert_close(a.grad, b.grad, **tolerance)
    return replaced, targets


@pytest.mark.parametrize("factory", [dlrm_tiny, small_dlrm, dlrm_bf16_tiny])
def test_dlrm_interaction_is_replaced(factory):
    model, inputs = factory("cpu")
    replaced, targets, got = dynamo_graph(model, inputs)
    one_call = factory is not small_dlrm  # small_dlrm's one mean and one max table stay alone, after the sum tables
    assert replaced == ["embedding_bags", *(["embedding_bags_stack"] if one_call else []), "pairwise_dots"]
    assert PAIRWISE_DOTS in targets and torch.bmm not in targets
    assert (targets.count(EMBEDDING_BAGS_STACK), targets.count(EMBEDDING_BAGS)) == ((1, 0) if one_call else (0, 1))
    assert (torch.stack in targets) == (F.embedding_bag in targets) == (not one_call)
    torch.testing.assert_close(got, model(*inputs))


def test_dcnv2_has_its_tables_batched_into_its_cross_input_and_no_interaction():
    """DCN-v2's cross input, torch.cat([bottom(dense), *pooled], 1), is the stack of those rows, flattened."""
    model, inputs = dcnv2_tiny("cpu")
    replaced, targets, got = dynamo_graph(model, inputs)
    assert replaced == ["embedding_bags", "embedding_bags_stack"] and F.embedding_bag not in targets
    assert EMBEDDING_BAGS_STACK in targets and "flatten" in targets and torch.cat not in targets
    torch.testing.assert_close(got, model(*inputs))


def test_the_seq_models_lookups_become_embedding_ops_and_its_attention_a_broadcast_linear_and_a_score_head():
    model, inputs = seq_tiny("cpu")
    replaced, targets, got = dynamo_graph(model, inputs)
    assert set(replaced) == {"embedding", "broadcast_target_linear", "score_head"} and F.embedding not in targets
    assert replaced.count("broadcast_target_linear") == replaced.count("score_head") == 1
    assert torch.cat in targets and F.linear in targets  # the top MLP's input and layers stay
    assert targets.count(EMBEDDING) == len(replaced) - 2
    torch.testing.assert_close(got, model(*inputs))


def lookups(**kwargs):
    """fn(weight, other): tanh of the product of both tables' rows at LOOKUP_IDX, F.embedding's `kwargs` for the
    first."""
    return lambda w, other: (F.embedding(LOOKUP_IDX, w, **kwargs) * F.embedding(LOOKUP_IDX % 5, other)).tanh()


LOOKUP_IDX = torch.tensor([[0, 3, 5], [5, 5, 1]])
TABLE, OTHER = torch.randn(7, 4, generator=torch.Generator().manual_seed(2)), torch.randn(5, 4)


@pytest.mark.parametrize("padding_idx", [None, 5, -1])
def test_lookups_become_embedding_ops_with_equal_values_and_gradients(padding_idx):
    fn = lookups(padding_idx=padding_idx)
    weights = [TABLE.clone().requires_grad_(), OTHER.clone().requires_grad_()]
    replaced, targets, got = dynamo_graph(fn, weights)
    assert replaced == ["embedding", "embedding"] and F.embedding not in targets
    want_weights = [w.detach().clone().requires_grad_() for w in weights]
    want = fn(*want_weights)
    torch.testing.assert_close(got, want)
    got.sum().backward()
    want.sum().backward()
    for a, b in zip(weights, want_weights):
        torch.testing.assert_close(a.grad, b.grad)


LOOKUP_NEAR_MISSES = {  # name: (F.embedding's keyword arguments, whether the table is trained)
    "max_norm": ({"max_norm": 1.0}, True),
    "scale_grad_by_freq": ({"scale_grad_by_freq": True}, True),
    "sparse gradient": ({"sparse": True}, True),
    "no gradient": ({}, False),
}


@pytest.mark.parametrize("name", list(LOOKUP_NEAR_MISSES))
def test_lookup_near_misses_are_left_alone(name):
    kwargs, trained = LOOKUP_NEAR_MISSES[name]
    fn = lambda w: F.embedding(LOOKUP_IDX, w, **kwargs).tanh()  # noqa: E731
    weight = TABLE.clone().requires_grad_(trained)
    replaced, targets, got = dynamo_graph(fn, (weight,))
    assert replaced == [] and EMBEDDING not in targets
    torch.testing.assert_close(got, fn(weight))


G = torch.Generator().manual_seed(1)
W = [torch.randn(rows, 4, generator=G) for rows in (6, 9, 5, 7)]
IDX = torch.tensor([0, 3, 4, 4, 1])
OFF = torch.tensor([0, 2, 2])


def bags(*modes, **kwargs):
    """fn(weights...) pooling the same bags from each weight with the given modes, results concatenated."""
    def fn(*weights):
        return torch.cat([F.embedding_bag(IDX, w, OFF, mode=m, **kwargs) for w, m in zip(weights, modes)], 1)
    return fn


def test_bags_are_grouped_by_mode_with_equal_values_and_gradients():
    fn = bags("sum", "mean", "sum", "mean")
    weights = [w.clone().requires_grad_() for w in W]
    replaced, targets, got = dynamo_graph(fn, weights)
    assert replaced == ["embedding_bags", "embedding_bags"] and F.embedding_bag not in targets
    want_weights = [w.clone().requires_grad_() for w in W]
    want = fn(*want_weights)
    torch.testing.assert_close(got, want)
    got.pow(2).sum().backward()
    want.pow(2).sum().backward()
    for a, b in zip(weights, want_weights):
        torch.testing.assert_close(a.grad, b.grad)


BAG_NEAR_MISSES = {
    "a single table": (bags("sum"), W[:1]),
    "max mode": (bags("max", "max"), W[:2]),
    "one of each mode": (bags("sum", "mean"), W[:2]),
    "per-sample weights": (lambda a, b: bags("sum", "sum", per_sample_weights=torch.ones(5))(a, b), W[:2]),
    "padding index": (bags("sum", "sum", padding_idx=0), W[:2]),
    "different widths": (bags("sum", "sum"), [W[0], torch.randn(9, 8, generator=G)]),
    "different dtypes": (bags("sum", "sum"), [W[0], W[1].double()]),
}


@pytest.mark.parametrize("name", list(BAG_NEAR_MISSES))
def test_bag_near_misses_are_left_alone(name):
    fn, weights = BAG_NEAR_MISSES[name]
    replaced, targets, got = dynamo_graph(fn, weights)
    assert replaced == [] and EMBEDDING_BAGS not in targets
    torch.testing.assert_close(got, fn(*weights))


X = torch.randn(2, 4, 3)
Y = torch.randn(2, 4, 3)
I, J = torch.tensor([1, 2, 3, 3]), torch.tensor([0, 0, 1, 3])
NEAR_MISSES = {
    "other operand": lambda x, y: torch.bmm(x, y.transpose(1, 2))[:, I, J],
    "square used twice": lambda x, y: (lambda s: s[:, I, J] + s.sum())(torch.bmm(x, x.transpose(1, 2))),
    "not transposed": lambda x, y: torch.bmm(x.transpose(1, 2), x)[:, I[:2], J[:2]],
    "index on batch": lambda x, y: torch.bmm(x, x.transpose(1, 2))[J[:2], I[:2]],
    "float index": lambda x, y: torch.bmm(x, x.transpose(1, 2))[:, I > 1],
    "slice, not index": lambda x, y: torch.bmm(x, x.transpose(1, 2))[:, 1:, 0],
}


@pytest.mark.parametrize("spelling", [
    lambda x: torch.bmm(x, x.transpose(1, 2)),
    lambda x: torch.bmm(x, x.transpose(-1, -2)),
    lambda x: x.bmm(torch.transpose(x, 2, 1)),
    lambda x: torch.bmm(x, x.permute(0, 2, 1)),
])
def test_spellings_of_the_square_are_found(spelling):
    fn = lambda x: spelling(x)[:, I, J.int()] * 2  # noqa: E731
    replaced, targets, got = dynamo_graph(fn, (X,))
    assert replaced == ["pairwise_dots"] and operator.getitem not in targets
    torch.testing.assert_close(got, fn(X))


FM_X = torch.randn(2, 5, 3, generator=G)
FM_Y = torch.randn(5, 4, generator=G)
FM_Y_PER_SAMPLE = torch.randn(2, 5, 4, generator=G)
FM_SPELLINGS = {
    "matmul, shared": (lambda x, y: torch.matmul(x, torch.matmul(x.transpose(1, 2), y)), FM_Y),
    "@, negative dims": (lambda x, y: x @ (x.transpose(-1, -2) @ y), FM_Y),
    "bmm, permute": (lambda x, y: torch.bmm(x, torch.bmm(x.permute(0, 2, 1), y)), FM_Y_PER_SAMPLE),
    "methods, mixed": (lambda x, y: x.matmul(torch.transpose(x, 2, 1).bmm(y)), FM_Y_PER_SAMPLE),
    "bmm outside, matmul inside": (lambda x, y: torch.bmm(x, torch.matmul(x.transpose(1, 2), y)), FM_Y),
}


@pytest.mark.parametrize("name", list(FM_SPELLINGS))
def test_fm_spellings_are_found_with_equal_values_and_gradients(name):
    product, y = FM_SPELLINGS[name]
    fn = lambda x, y: product(x, y).tanh()  # noqa: E731
    x, y = FM_X.clone().requires_grad_(), y.clone().requires_grad_()
    replaced, targets, got = dynamo_graph(fn, (x, y))
    assert replaced == ["fm_interaction"] and targets.count(FM_INTERACTION) == 1
    assert not {torch.bmm, torch.matmul, operator.matmul, "bmm", "matmul"} & set(targets)
    want_x, want_y = FM_X.clone().requires_grad_(), y.detach().clone().requires_grad_()
    want = fn(want_x, want_y)
    torch.testing.assert_close(got, want)
    got.sum().backward()
    want.sum().backward()
    torch.testing.assert_close(x.grad, want_x.grad)
    torch.testing.assert_close(y.grad, want_y.grad)


def test_fm_under_autocast_casts_its_operands():
    def fn(x, y):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return x @ (x.transpose(1, 2) @ y)

    replaced, targets, got = dynamo_graph(fn, (FM_X, FM_Y))
    assert replaced == ["fm_interaction"] and targets.count("to") == 2
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got, fn(FM_X, FM_Y), rtol=2e-2, atol=2e-2)


Z = torch.randn(2, 5, 3, generator=G)
CUBE = torch.randn(4, 4, 4, generator=G)
FM_NEAR_MISSES = {  # name: (fn, args)
    "other operand outside": (lambda x, y, z: z @ (x.transpose(1, 2) @ y), (FM_X, FM_Y, Z)),
    "other operand inside": (lambda x, y, z: x @ (z.transpose(1, 2) @ y), (FM_X, FM_Y, Z)),
    "product used twice": (lambda x, y: (lambda m: x @ m + m.sum())(x.transpose(1, 2) @ y), (FM_X, FM_Y)),
    "transposed outside": (lambda x, w: x.transpose(1, 2) @ (x @ w), (FM_X, torch.randn(3, 4, generator=G))),
    "batch dim transposed": (lambda x, y: x @ (x.transpose(0, 1) @ y), (CUBE, CUBE[0])),
    "projection on the left": (lambda x, y: (y.t() @ x) @ x.transpose(1, 2), (FM_X, FM_Y)),
    "broadcast batch": (lambda x, y: x @ (x.transpose(1, 2) @ y[None]), (FM_X, FM_Y)),
    "4-D features": (lambda x, y: x @ (x.transpose(2, 3) @ y), (FM_X.expand(2, 2, 5, 3), FM_Y)),
    "elementwise outside": (lambda x, y: x * (x.transpose(1, 2) @ y).sum(), (FM_X, FM_Y)),
}

ALL_NEAR_MISSES = {**{f"dots: {name}": (PAIRWISE_DOTS, fn, (X, Y)) for name, fn in NEAR_MISSES.items()},
                   **{f"fm: {name}": (FM_INTERACTION, fn, args) for name, (fn, args) in FM_NEAR_MISSES.items()}}


@pytest.mark.parametrize("name", list(ALL_NEAR_MISSES))
def test_near_misses_are_left_alone(name):
    op, fn, args = ALL_NEAR_MISSES[name]
    replaced, targets, got = dynamo_graph(fn, args)
    assert replaced == [] and op not in targets
    torch.testing.assert_close(got, fn(*args))
