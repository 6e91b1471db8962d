"""The pre-grad pattern pass finds the DLRM dot interaction (fp32 and under bf16 autocast) in Dynamo's graph
and replaces it by kevolve::pairwise_dots with the same value; anything not exactly the pattern is left alone."""
import operator

import pytest
import torch

from benchmarks.models.dcnv2 import dcnv2_tiny
from benchmarks.models.dlrm import dlrm_bf16_tiny, dlrm_tiny, small_dlrm
from benchmarks.models.seq import seq_tiny
from torch_kevolve.patterns import rewrite_patterns

PAIRWISE_DOTS = torch.ops.kevolve.pairwise_dots.default


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


@pytest.mark.parametrize("factory", [dlrm_tiny, small_dlrm, dlrm_bf16_tiny])
def test_dlrm_interaction_is_replaced(factory):
    model, inputs = factory("cpu")
    replaced, targets, got = dynamo_graph(model, inputs)
    assert replaced == ["pairwise_dots"]
    assert PAIRWISE_DOTS in targets and torch.bmm not in targets
    torch.testing.assert_close(got, model(*inputs))


@pytest.mark.parametrize("factory", [dcnv2_tiny, seq_tiny])
def test_models_without_the_interaction_are_left_alone(factory):
    model, inputs = factory("cpu")
    assert dynamo_graph(model, inputs)[0] == []


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


@pytest.mark.parametrize("name", list(NEAR_MISSES))
def test_near_misses_are_left_alone(name):
    fn = NEAR_MISSES[name]
    replaced, targets, got = dynamo_graph(fn, (X, Y))
    assert replaced == [] and PAIRWISE_DOTS not in targets
    torch.testing.assert_close(got, fn(X, Y))


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
