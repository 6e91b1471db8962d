"""A target attention's first linear layer without its input (patterns.broadcast_linear): the broadcast form
against linear(cat(parts)) in float64, values and gradients, for every kind of part; the pre-grad pass finds the
spellings of DIN's input (expand_as, expand with -1, method and operator forms, any part order) and leaves near
misses alone."""
import pytest
import torch
import torch.nn.functional as F
from torch.fx.experimental.proxy_tensor import make_fx

from tests.patterns.test_matcher import dynamo_graph, replaced_against_eager
from torch_kevolve.patterns.broadcast_linear import broadcast_target_linear

B, D, OUT = 3, 4, 6
PART_VALUES = {(1, 0, 0): lambda h, t: h, (0, 1, 0): lambda h, t: t, (1, -1, 0): lambda h, t: h - t,
               (-1, 1, 0): lambda h, t: t - h, (0, 0, 1): lambda h, t: h * t}


def _operands(parts, bias=True, length=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    history, target = torch.randn(B, length, D, generator=g), torch.randn(B, 1, D, generator=g)
    weight = torch.randn(OUT, len(parts) * D, generator=g)
    tensors = [history, target, weight] + ([torch.randn(OUT, generator=g)] if bias else [])
    return [t.double().requires_grad_() for t in tensors]


@pytest.mark.parametrize("parts", [
    ((1, 0, 0), (0, 1, 0), (1, -1, 0), (0, 0, 1)),  # DIN's
    ((0, 0, 1), (-1, 1, 0), (1, 0, 0)),
    ((1, 0, 0), (0, 1, 0)),
    ((0, 1, 0), (0, 0, 1)),
    ((0, 0, 1),),
    ((0, 1, 0),),
], ids=["din", "reordered", "no_product", "no_history", "product_only", "target_only"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("length", [2, 8], ids=["short_history", "long_history"])  # under and over OUT positions
def test_equals_the_linear_of_the_concatenated_parts(parts, bias, length):
    operands = _operands(parts, bias, length)
    history, target, weight, *rest = operands
    got = broadcast_target_linear(history, target, weight, rest[0] if rest else None, parts)
    t = target.expand_as(history)
    want = F.linear(torch.cat([PART_VALUES[p](history, t) for p in parts], -1), weight, rest[0] if rest else None)
    assert got.shape == (B, length, OUT)
    torch.testing.assert_close(got, want)
    cotangent = torch.randn(B, length, OUT, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    grads = [torch.autograd.grad(value, operands, cotangent, allow_unused=True, materialize_grads=True)
             for value in (got, want)]
    for a, b in zip(*grads):  # a target-only layer reads history's shape alone: zero gradients for both
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("length,per_user_matrices", [(8, True), (2, False)])
def test_a_matrix_per_user_only_where_it_is_smaller_than_the_users_history(length, per_user_matrices):
    """[OUT, D] per user against [length, D]: short histories multiply h * t by the product block instead."""
    parts = ((1, 0, 0), (0, 1, 0), (1, -1, 0), (0, 0, 1))
    history, target, weight, bias = (t.detach() for t in _operands(parts, length=length))
    traced = make_fx(lambda h, t, w, b: broadcast_target_linear(h, t, w, b, parts))(history, target, weight, bias)
    targets = {n.target for n in traced.graph.nodes}
    assert (torch.ops.aten.bmm.default in targets) == per_user_matrices


def _din(spelling):
    """fn(history, target_rows, weight, bias): DIN's first attention layer, the broadcast spelled `spelling`."""
    broadcasts = {
        "expand_as": lambda h, u: u.unsqueeze(1).expand_as(h),
        "expand_minus_one": lambda h, u: u.unsqueeze(1).expand(-1, h.shape[1], -1),
        "expand_sizes": lambda h, u: u[:, None, :].expand(h.shape),
    }

    def fn(h, u, weight, bias):
        t = broadcasts[spelling](h, u)
        parts = [h, t, torch.sub(h, t), t.mul(h)] if spelling == "expand_sizes" else [h, t, h - t, h * t]
        return F.linear(torch.cat(parts, dim=-1), weight, bias).relu()
    return fn


def _din_inputs(seed=0, parts=4, length=8):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, length, D, generator=g), torch.randn(B, D, generator=g).requires_grad_(),
            torch.randn(OUT, parts * D, generator=g).requires_grad_(), torch.randn(OUT, generator=g).requires_grad_()]


@pytest.mark.parametrize("spelling", ["expand_as", "expand_minus_one", "expand_sizes"])
def test_din_spellings_are_replaced_with_equal_values_and_gradients(spelling):
    replaced, targets = replaced_against_eager(_din(spelling), _din_inputs(), rtol=1e-4, atol=1e-5)
    assert replaced == ["broadcast_target_linear"] and torch.cat not in targets


NEAR_MISSES = {  # name: (fn(h, u, weight, bias), parts the weight is wide for)
    "sum part": (lambda h, u, w, b: F.linear(torch.cat([h, u.unsqueeze(1).expand_as(h), h + u.unsqueeze(1)], -1),
                                             w, b), 3),
    "full target": (lambda h, u, w, b: F.linear(torch.cat([h, h.flip(1), h * h.flip(1)], -1), w, b), 3),
    "cat along positions": (lambda h, u, w, b: F.linear(torch.cat([h, u.unsqueeze(1).expand_as(h)], 1), w, b), 1),
    "cat used elsewhere": (lambda h, u, w, b: (lambda x: F.linear(x, w, b).sum() + x.sum())(
        torch.cat([h, u.unsqueeze(1).expand_as(h)], -1)), 2),
    "product used elsewhere": (lambda h, u, w, b: (lambda p: F.linear(torch.cat([h, p], -1), w, b).sum() + p.sum())(
        h * u.unsqueeze(1).expand_as(h)), 2),
}


@pytest.mark.parametrize("name", list(NEAR_MISSES))
def test_near_misses_are_left_alone(name):
    fn, parts = NEAR_MISSES[name]
    inputs = _din_inputs(parts=parts)
    replaced, targets, got = dynamo_graph(fn, inputs)
    assert replaced == [] and torch.cat in targets
    torch.testing.assert_close(got, fn(*inputs))


def test_under_autocast_the_layer_is_left_alone():
    fn = _din("expand_as")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        replaced, targets, _ = dynamo_graph(fn, _din_inputs())
    assert replaced == [] and torch.cat in targets
