"""A linear layer of one output over a sequence as a product and a sum (patterns.score_head): values and gradients
against F.linear in float64, and the pre-grad pass replaces it only over sequences (3 or more dims), for one
output, outside autocast."""
import pytest
import torch
import torch.nn.functional as F

from tests.patterns.test_matcher import dynamo_graph, replaced_against_eager
from torch_kevolve.patterns.score_head import score_head


@pytest.mark.parametrize("shape", [(3, 5, 4), (2, 3, 5, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_equals_the_linear_layer(shape, bias):
    g = torch.Generator().manual_seed(0)
    x, weight = torch.randn(*shape, generator=g), torch.randn(1, shape[-1], generator=g)
    operands = [t.double().requires_grad_() for t in (x, weight, *([torch.randn(1, generator=g)] if bias else []))]
    got, want = score_head(*operands, *([None] if not bias else [])), F.linear(*operands)
    torch.testing.assert_close(got, want)
    cotangent = torch.randn(want.shape, dtype=torch.float64, generator=g)
    for a, b in zip(torch.autograd.grad(got, operands, cotangent), torch.autograd.grad(want, operands, cotangent)):
        torch.testing.assert_close(a, b)


def _head(x, weight, bias):
    return F.linear(x.relu(), weight, bias)


def _inputs(shape, outputs):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(*shape, generator=g), torch.randn(outputs, shape[-1], generator=g).requires_grad_(),
            torch.randn(outputs, generator=g).requires_grad_())


def test_a_sequences_score_head_is_replaced_with_equal_values_and_gradients():
    replaced, targets = replaced_against_eager(_head, _inputs((3, 5, 4), 1))
    assert replaced == ["score_head"] and F.linear not in targets


@pytest.mark.parametrize("shape,outputs", [((6, 4), 1), ((3, 5, 4), 2)], ids=["no_sequence", "two_outputs"])
def test_other_layers_are_left(shape, outputs):
    inputs = _inputs(shape, outputs)
    replaced, targets, got = dynamo_graph(_head, inputs)
    assert replaced == [] and F.linear in targets
    torch.testing.assert_close(got, _head(*inputs))


def test_under_autocast_the_layer_is_left():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        replaced, targets, _ = dynamo_graph(_head, _inputs((3, 5, 4), 1))
    assert replaced == [] and F.linear in targets
