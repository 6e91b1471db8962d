"""Sums of embedding gradients of one table (patterns.gradient_sums): the merged backward against one-hot
products, the finder's hits and near misses on post-grad graphs (make_fx on fake tensors), and the pass's merge of
a chain of three lookups' gradients into one backward that computes the same values."""
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx

from torch_kevolve.backend.graph_pass import KevolvePass
from torch_kevolve.backend.options import KevolveOptions
from torch_kevolve.patterns.gradient_sums import find_gradient_sum, merged_embedding_backward

aten = torch.ops.aten
backward = torch.ops.kevolve.embedding_backward
ROWS, DIM = 10, 3


def _one_hot_gradient(grad, indices, padding_idx):
    """The dense gradient of rows[indices] as onehotᵀ @ grad in float64, the padding row's gradient zero."""
    hot = torch.nn.functional.one_hot(indices.reshape(-1).long(), ROWS).double()
    if padding_idx >= 0:
        hot[:, padding_idx] = 0
    return hot.T @ grad.reshape(-1, DIM).double()


@pytest.mark.parametrize("padding_idx", [-1, 4])
@pytest.mark.parametrize("dtypes", [(torch.int64, torch.int64), (torch.int32, torch.int32), (torch.int32, torch.int64)])
def test_merged_backward_is_the_sum_of_both_gradients(padding_idx, dtypes):
    g = torch.Generator().manual_seed(0)
    indices_a = torch.randint(0, ROWS, (5, 4), generator=g).to(dtypes[0])
    indices_b = torch.randint(0, ROWS, (7,), generator=g).to(dtypes[1])
    grad_a, grad_b = torch.randn(5, 4, DIM, generator=g), torch.randn(7, DIM, generator=g)
    got = merged_embedding_backward(grad_a, indices_a, grad_b, indices_b, ROWS, padding_idx)
    want = _one_hot_gradient(grad_a, indices_a, padding_idx) + _one_hot_gradient(grad_b, indices_b, padding_idx)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want)


def _graph(fn):
    """fn(grad_a, indices_a, grad_b, indices_b, grad_c, indices_c) traced to a post-grad graph on fake tensors."""
    with FakeTensorMode():
        ids = lambda *shape: torch.zeros(shape, dtype=torch.long)  # noqa: E731
        return make_fx(fn)(torch.empty(6, DIM), ids(6), torch.empty(2, 3, DIM), ids(2, 3), torch.empty(4, DIM), ids(4))


def _sums(gm):
    return [s for n in gm.graph.nodes if (s := find_gradient_sum(n)) is not None]


def test_finds_the_sum_of_two_lookups_of_one_table():
    gm = _graph(lambda ga, ia, gb, ib, gc, ic: backward(ga, ia, ROWS, 2, False) + backward(gb, ib, ROWS, 2, False))
    (found,) = _sums(gm)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    assert found.root.target is aten.add.Tensor
    assert found.args == (*placeholders[:4], ROWS, 2)


@pytest.mark.parametrize("fn", [
    lambda ga, ia, gb, ib, gc, ic: backward(ga, ia, ROWS, -1, False) + backward(gb, ib, 1, -1, False),  # broadcast
    lambda ga, ia, gb, ib, gc, ic: backward(ga, ia, ROWS, -1, False) + backward(gb, ib, ROWS, 3, False),
    lambda ga, ia, gb, ib, gc, ic: backward(ga, ia, ROWS, -1, True) + backward(gb, ib, ROWS, -1, True),
    lambda ga, ia, gb, ib, gc, ic: aten.add(backward(ga, ia, ROWS, -1, False), backward(gb, ib, ROWS, -1, False),
                                            alpha=2),
    lambda ga, ia, gb, ib, gc, ic: backward(ga, ia, ROWS, -1, False) + backward(gb.double(), ib, ROWS, -1, False),
    lambda ga, ia, gb, ib, gc, ic: (lambda a: (a + backward(gb, ib, ROWS, -1, False), a))(
        backward(ga, ia, ROWS, -1, False)),
], ids=["broadcast_table", "other_padding", "scaled_by_frequency", "scaled_term", "other_dtype", "used_elsewhere"])
def test_near_misses_are_left(fn):
    assert _sums(_graph(fn)) == []


def test_pass_merges_a_chain_of_three_gradients_into_one_backward():
    def three(ga, ia, gb, ib, gc, ic):
        return (backward(ga, ia, ROWS, 1, False) + backward(gb, ib, ROWS, 1, False)) + backward(gc, ic, ROWS, 1, False)

    gm = _graph(three)
    KevolvePass(KevolveOptions(), dispatcher=None)._merge_gradient_sums(gm.graph, "backward")
    gm.recompile()
    backwards = [n for n in gm.graph.nodes if n.target is backward.default]
    assert len(backwards) == 1 and not any(n.target is aten.add.Tensor for n in gm.graph.nodes)
    g = torch.Generator().manual_seed(1)
    inputs = [torch.randn(6, DIM, generator=g), torch.randint(0, ROWS, (6,), generator=g),
              torch.randn(2, 3, DIM, generator=g), torch.randint(0, ROWS, (2, 3), generator=g),
              torch.randn(4, DIM, generator=g), torch.randint(0, ROWS, (4,), generator=g)]
    want = sum(_one_hot_gradient(inputs[i], inputs[i + 1], 1) for i in (0, 2, 4))
    torch.testing.assert_close(gm(*inputs).double(), want)


def _failing_merge(*args):
    raise RuntimeError("no merge today")


def test_a_failing_merge_leaves_the_sum_as_it_was(monkeypatch, caplog):
    """With fallback on, a merge whose splice fails is logged and the graph keeps both backwards and their add;
    with fallback off, the failure reaches the caller."""
    monkeypatch.setattr("torch_kevolve.patterns.gradient_sums.merged_embedding_backward", _failing_merge)

    def two(ga, ia, gb, ib, gc, ic):
        return backward(ga, ia, ROWS, -1, False) + backward(gb, ib, ROWS, -1, False)

    gm = _graph(two)
    before = [str(n.target) for n in gm.graph.nodes]
    KevolvePass(KevolveOptions(), dispatcher=None)._merge_gradient_sums(gm.graph, "backward")
    assert [str(n.target) for n in gm.graph.nodes] == before
    assert "merging its embedding gradients failed: no merge today" in caplog.text
    with pytest.raises(RuntimeError, match="no merge today"):
        KevolvePass(KevolveOptions(fallback=False), dispatcher=None)._merge_gradient_sums(_graph(two).graph, "backward")
