"""The epilogue matcher on post-grad ATen graphs (make_fx on fake tensors): both spellings of a linear layer
and its ReLU, and the near misses it must leave (a product or sum used elsewhere, scaled terms, no ReLU)."""
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx

from torch_kevolve.patterns.epilogues import find_epilogue

aten = torch.ops.aten
SHAPES = ((16,), (8, 12), (12, 16))  # bias, a, b


def _found(fn):
    """(the epilogues found, the graph's nodes by target) of fn(bias, a, b) traced to ATen."""
    with FakeTensorMode():
        gm = make_fx(fn)(*(torch.empty(s) for s in SHAPES))
    nodes = {n.target: n for n in gm.graph.nodes}
    return [e for n in gm.graph.nodes if (e := find_epilogue(n)) is not None], nodes


def test_gpu_spelling_mm_then_add_then_relu():
    (found,), nodes = _found(lambda bias, a, b: aten.relu(aten.add(aten.mm(a, b), bias)))
    assert found.overload is torch.ops.kevolve.addmm_relu.default
    assert found.root is nodes[aten.relu.default]
    assert found.nodes == (nodes[aten.relu.default], nodes[aten.add.Tensor], nodes[aten.mm.default])
    assert [n.name for n in found.args] == [n.name for n in nodes[aten.mm.default].graph.nodes if n.op == "placeholder"]


def test_bias_first_in_the_add():
    (found,), nodes = _found(lambda bias, a, b: aten.relu(aten.add(bias, aten.mm(a, b))))
    assert found.args[1:] == nodes[aten.mm.default].args and found.args[0] is nodes[aten.add.Tensor].args[0]


def test_cpu_spelling_addmm_then_relu():
    (found,), nodes = _found(lambda bias, a, b: aten.relu(aten.addmm(bias, a, b, beta=1, alpha=1)))
    assert found.nodes == (nodes[aten.relu.default], nodes[aten.addmm.default])
    assert found.args == nodes[aten.addmm.default].args[:3]


def test_near_misses_are_left():
    misses = [
        lambda bias, a, b: aten.relu(aten.addmm(bias, a, b, beta=2)),
        lambda bias, a, b: aten.relu(aten.addmm(bias, a, b, alpha=0.5)),
        lambda bias, a, b: aten.relu(aten.add(aten.mm(a, b), bias, alpha=2)),
        lambda bias, a, b: aten.relu(aten.add(aten.mm(a, b), 1.0)),
        lambda bias, a, b: aten.sigmoid(aten.addmm(bias, a, b)),
        lambda bias, a, b: aten.relu(aten.mm(a, b)),
        lambda bias, a, b: (aten.relu(aten.addmm(bias, a, b)), aten.addmm(bias, a, b)),  # a second addmm: fine
    ]
    assert [len(_found(fn)[0]) for fn in misses] == [0, 0, 0, 0, 0, 0, 1]


def test_values_used_elsewhere_are_left():
    def product_reused(bias, a, b):
        product = aten.mm(a, b)
        return aten.relu(aten.add(product, bias)), product

    def sum_reused(bias, a, b):
        linear = aten.addmm(bias, a, b)
        return aten.relu(linear), linear

    assert _found(product_reused)[0] == [] and _found(sum_reused)[0] == []
