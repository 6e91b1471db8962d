"""The pre-grad pattern EMBEDDING_BAGS_STACK in Dynamo's graph: torch.stack([*heads, *pooled], dim=1 or -2) (or
torch.cat of them along dim 1 or -1, the stack flattened), where
pooled are all the outputs of one kevolve::embedding_bags call (made by EMBEDDING_BAGS from F.embedding_bag calls) in
order, each read by the stack alone, and the heads (none, one or two) tensors of the pooled rows' shape, dtype and
device, becomes one kevolve::embedding_bags_stack call with the value and the gradients (of the tables and of the
heads) of eager; near misses (another stack dim, pooled rows out of order or missing, a pooled row read elsewhere, a
head of another dtype, a head after the pooled rows, the rows of two batched calls) keep their batched call and
their torch.stack."""
import operator

import pytest
import torch
import torch.nn.functional as F

from tests.patterns.test_matcher import dynamo_graph, replaced_against_eager

EMBEDDING_BAGS = torch.ops.kevolve.embedding_bags.default
EMBEDDING_BAGS_STACK = torch.ops.kevolve.embedding_bags_stack.default
DIM = 4
IDX = [torch.tensor([0, 3, 4, 4, 1]), torch.tensor([2, 2, 0]), torch.tensor([6, 1, 1, 5, 0, 3])]
OFF = [torch.tensor([0, 2, 2]), torch.tensor([0, 1, 3]), torch.tensor([0, 4, 5])]  # 3 bags each, empty ones
ROWS = (5, 3, 7)


OFF_LAST = [torch.cat([o, torch.tensor([i.numel()])]) for o, i in zip(OFF, IDX)]  # under include_last_offset


def tables(include_last_offset=False):
    return IDX, OFF_LAST if include_last_offset else OFF


def inputs(heads, requires_grad=True, head_dtype=torch.float32):
    """The three tables' weights, then `heads` [3, DIM] head rows (the second a transposed tensor)."""
    g = torch.Generator().manual_seed(11)
    weights = [torch.randn(rows, DIM, generator=g).requires_grad_(requires_grad) for rows in ROWS]
    made = [torch.randn(3, DIM, generator=g, dtype=head_dtype),
            torch.randn(DIM, 3, generator=g, dtype=head_dtype).t()]
    return weights + [h.requires_grad_(requires_grad) for h in made[:heads]]


def pooled_of(weights, mode="sum", include_last_offset=False):
    indices, offsets = tables(include_last_offset)
    return [F.embedding_bag(i, w, o, mode=mode, include_last_offset=include_last_offset)
            for i, w, o in zip(indices, weights, offsets)]


def stacked(mode="sum", dim=1, include_last_offset=False, keyword=False, join=torch.stack):
    """fn(w0, w1, w2, *heads) = join([*heads, *pooled], dim) (torch.stack, or torch.cat: the stack's rows
    flattened), then a tanh (the stack read by the model)."""
    def fn(*tensors):
        weights, heads = tensors[:3], tensors[3:]
        rows = [*heads, *pooled_of(weights, mode, include_last_offset)]
        out = join(rows, dim=dim) if keyword else join(rows, dim)
        return out.tanh()
    return fn


FOUND = {  # name: (fn, heads)
    "no head": (stacked(), 0),
    "one head": (stacked(mode="mean"), 1),
    "two heads": (stacked(), 2),
    "two heads, dim=-2": (stacked(dim=-2, keyword=True), 2),
    "one head, mean, include_last_offset": (stacked(mode="mean", include_last_offset=True), 1),
    "no head, dim=-2": (stacked(dim=-2), 0),
    "concatenated, one head": (stacked(join=torch.cat), 1),
    "concatenated, two heads, mean, dim=-1": (stacked(mode="mean", dim=-1, keyword=True, join=torch.cat), 2),
}


@pytest.mark.parametrize("name", list(FOUND))
def test_stacks_of_heads_and_all_pooled_rows_are_replaced_with_equal_values_and_gradients(name):
    fn, heads = FOUND[name]
    tensors = inputs(heads)
    replaced, targets = replaced_against_eager(fn, tensors)
    assert replaced == ["embedding_bags", "embedding_bags_stack"]
    assert targets.count(EMBEDDING_BAGS_STACK) == 1
    assert EMBEDDING_BAGS not in targets and torch.stack not in targets and F.embedding_bag not in targets
    assert operator.getitem not in targets  # the batched call's outputs are gone with it
    assert torch.cat not in targets and ("flatten" in targets) == name.startswith("concatenated")


def test_the_stack_op_is_called_with_the_heads_and_the_batched_calls_arguments():
    fn, heads = FOUND["two heads"]
    tensors = inputs(heads, requires_grad=False)
    seen = {}

    def backend(gm, example_inputs):
        from torch_kevolve.patterns import rewrite_patterns
        rewrite_patterns(gm)
        (node,) = [n for n in gm.graph.nodes if n.target is EMBEDDING_BAGS_STACK]
        seen["args"] = node.args
        return gm.forward

    torch._dynamo.reset()
    torch.compile(fn, backend=backend)(*tensors)
    torch._dynamo.reset()
    head_nodes, weights, indices, offsets, mode, include_last_offset = seen["args"]
    assert len(head_nodes) == 2 and len(weights) == len(indices) == len(offsets) == 3
    assert (mode, include_last_offset) == (0, False)


def rows_fn(arrange):
    """fn(w0, w1, w2, head): `arrange(head, pooled)` -> (rows, dim, extra): tanh(torch.stack(rows, dim)), plus
    `extra` (a tensor added to the result's sum, or None)."""
    def fn(w0, w1, w2, head):
        rows, dim, extra = arrange(head, pooled_of([w0, w1, w2]))
        out = torch.stack(rows, dim).tanh()
        return out if extra is None else out + extra.sum()
    return fn


NEAR_MISSES = {  # name: (fn, head dtype)
    "stack dim 0": (rows_fn(lambda h, p: ([h, *p], 0, None)), torch.float32),
    "pooled rows out of order": (rows_fn(lambda h, p: ([h, p[1], p[0], p[2]], 1, None)), torch.float32),
    "only some tables' rows": (rows_fn(lambda h, p: ([h, p[0], p[1]], 1, p[2])), torch.float32),
    "a pooled row also read elsewhere": (rows_fn(lambda h, p: ([h, *p], 1, p[1])), torch.float32),
    "a head of another dtype": (rows_fn(lambda h, p: ([h, *p], 1, None)), torch.float64),
    "a head after the pooled rows": (rows_fn(lambda h, p: ([*p, h], 1, None)), torch.float32),
    "a head between the pooled rows": (rows_fn(lambda h, p: ([p[0], h, p[1], p[2]], -2, None)), torch.float32),
    "a pooled row twice": (rows_fn(lambda h, p: ([h, *p, p[2]], 1, None)), torch.float32),
}


NEAR_MISSES["concatenated along dim 0"] = (
    lambda w0, w1, w2, head: torch.cat([head, *pooled_of([w0, w1, w2])], 0).tanh(), torch.float32)


@pytest.mark.parametrize("name", list(NEAR_MISSES))
def test_near_misses_keep_the_stack(name):
    fn, head_dtype = NEAR_MISSES[name]
    tensors = inputs(1, head_dtype=head_dtype)
    replaced, targets = replaced_against_eager(fn, tensors)
    assert replaced == ["embedding_bags"]
    assert EMBEDDING_BAGS_STACK not in targets and EMBEDDING_BAGS in targets
    assert (torch.cat if "concatenated" in name else torch.stack) in targets


def test_the_rows_of_two_batched_calls_are_not_one_stack():
    """Sum tables then mean tables: EMBEDDING_BAGS makes two calls, and the stack's rows past the first call's are
    not its outputs."""
    def fn(w0, w1, w2, w3):
        return torch.stack([*pooled_of([w0, w1, w2], "sum"), *pooled_of([w3, w3, w3], "mean")[:2]], 1).tanh()

    tensors = inputs(0) + [torch.randn(7, DIM).requires_grad_()]
    replaced, targets = replaced_against_eager(fn, tensors)
    assert replaced == ["embedding_bags", "embedding_bags"]
    assert EMBEDDING_BAGS_STACK not in targets and targets.count(EMBEDDING_BAGS) == 2 and torch.stack in targets


def test_without_the_pattern_pass_the_graph_keeps_its_bags_and_stack():
    fn, heads = FOUND["one head"]
    replaced, targets, _ = dynamo_graph(fn, inputs(heads, requires_grad=False), rewrite=False)
    assert replaced == [] and F.embedding_bag in targets and torch.stack in targets
