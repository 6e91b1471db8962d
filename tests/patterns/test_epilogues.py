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


BUCKET_SHAPES = ((4, 6), (9, 4), (4,), (4,))  # borders, x [batch, features], lengths, offsets
CLAMP_OFFSET = torch.ops.kevolve.bucketize_clamp_offset.default


def mbdt(borders, x, lengths, offsets, right=False):
    buckets = aten.searchsorted(borders, aten.clone(aten.t(x), memory_format=torch.contiguous_format), right=right)
    return aten.add(aten.minimum(buckets, aten.unsqueeze(lengths, 1)), aten.unsqueeze(offsets, 1))


def _found_buckets(fn):
    """(the epilogues found, the graph's nodes by target) of fn(borders, x, lengths, offsets) traced to ATen."""
    with FakeTensorMode():
        tensors = [torch.empty(s, dtype=torch.int64 if i >= 2 else torch.float32) for i, s in enumerate(BUCKET_SHAPES)]
        gm = make_fx(fn)(*tensors)
    nodes = {n.target: n for n in gm.graph.nodes}
    return [e for n in gm.graph.nodes if (e := find_epilogue(n)) is not None], nodes


def test_mbdt_search_clamp_and_offset_read_the_transposed_view():
    (found,), nodes = _found_buckets(lambda b, x, l, o: mbdt(b, x, l, o, right=True))
    search, clamp, add = nodes[aten.searchsorted.Tensor], nodes[aten.minimum.default], nodes[aten.add.Tensor]
    assert found.overload is CLAMP_OFFSET and found.root is add and found.product is search
    assert found.nodes == (add, clamp, search, nodes[aten.clone.default])
    values, borders, lengths, offsets, right = found.args
    assert values is nodes[aten.t.default] and borders is search.args[0] and right is True
    assert (lengths, offsets) == (clamp.args[1], add.args[1])


def test_operands_in_either_order_and_a_copy_used_elsewhere_is_kept():
    def swapped(b, x, l, o):
        values = aten.clone(aten.t(x))
        clamped = aten.minimum(aten.unsqueeze(l, 1), aten.searchsorted(b, values))
        return aten.add(aten.unsqueeze(o, 1), clamped), values

    (found,), nodes = _found_buckets(swapped)
    assert found.nodes[-1] is nodes[aten.searchsorted.Tensor] and found.args[0] is nodes[aten.clone.default]


def test_bucket_near_misses_are_left():
    misses = [
        lambda b, x, l, o: aten.add(aten.minimum(aten.searchsorted(b, x.t().contiguous()), l.unsqueeze(1)),
                                    o.unsqueeze(1), alpha=2),
        lambda b, x, l, o: aten.add(aten.minimum(aten.searchsorted(b, x.t().contiguous(), out_int32=True),
                                                 l.unsqueeze(1)), o.unsqueeze(1)),
        lambda b, x, l, o: aten.add(aten.minimum(aten.searchsorted(b, x.t().contiguous()), l[:1].unsqueeze(0)),
                                    o.unsqueeze(1)),  # a [1, 1] length
        lambda b, x, l, o: aten.add(aten.maximum(aten.searchsorted(b, x.t().contiguous()), l.unsqueeze(1)),
                                    o.unsqueeze(1)),
        lambda b, x, l, o: aten.add(aten.minimum(aten.searchsorted(b[0], x), l[0]), o[0]),  # 1-D borders
        lambda b, x, l, o: aten.add(aten.minimum(aten.searchsorted(b, x.t().contiguous()), l.float().unsqueeze(1)),
                                    o.unsqueeze(1)),
    ]
    assert [len(_found_buckets(fn)[0]) for fn in misses] == [0] * len(misses)


def test_bucket_values_used_elsewhere_are_left():
    def search_reused(b, x, l, o):
        buckets = aten.searchsorted(b, x.t().contiguous())
        return aten.add(aten.minimum(buckets, l.unsqueeze(1)), o.unsqueeze(1)), buckets

    def clamp_reused(b, x, l, o):
        clamped = aten.minimum(aten.searchsorted(b, x.t().contiguous()), l.unsqueeze(1))
        return aten.add(clamped, o.unsqueeze(1)), clamped

    assert _found_buckets(search_reused)[0] == [] and _found_buckets(clamp_reused)[0] == []
