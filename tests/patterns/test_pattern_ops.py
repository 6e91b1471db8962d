"""The pattern ops kevolve::pairwise_dots and its backward against an independent float64 einsum reference
(repeated pairs, i == j, negative indices, int32/int64 indices, fp32/fp16/bf16), kevolve::embedding_bags
against one-hot matrix products, kevolve::fm_interaction and its backward against einsums (shared and
per-sample projections), their fakes, and the autograd formulas checked by gradcheck in float64."""
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import torch_kevolve.patterns  # noqa: F401  (registers the ops)
from torch_kevolve.patterns import meaning

pairwise_dots = torch.ops.kevolve.pairwise_dots.default
pairwise_dots_backward = torch.ops.kevolve.pairwise_dots_backward.default
g = torch.Generator().manual_seed(0)
X = torch.randn(3, 5, 7, generator=g, dtype=torch.float64)
FIRST = torch.tensor([1, 2, 2, 4, 0, 3, 3, -1])
SECOND = torch.tensor([0, 2, 2, 1, 0, 4, 4, 3])  # (2, 2) twice, (0, 0), (3, 4) twice, -1 is row 4
GRAD = torch.randn(3, 8, generator=g, dtype=torch.float64)
RTOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}


def einsum_dots(x, first, second):
    rows = torch.eye(x.shape[1], dtype=torch.float64)
    pick_first, pick_second = rows[first], rows[second]  # [P, F] one-hot
    return torch.einsum("pi,bid,pj,bjd->bp", pick_first, x, pick_second, x)


def einsum_features_grad(grad, x, first, second):
    rows = torch.eye(x.shape[1], dtype=torch.float64)
    pick_first, pick_second = rows[first], rows[second]
    return (torch.einsum("bp,pk,pj,bjd->bkd", grad, pick_first, pick_second, x)
            + torch.einsum("bp,pk,pi,bid->bkd", grad, pick_second, pick_first, x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_ops_match_einsum(dtype, index_dtype):
    first, second = FIRST.to(index_dtype), SECOND.to(index_dtype)
    x, grad = X.to(dtype), GRAD.to(dtype)
    out = pairwise_dots(x, first, second)
    assert (out.shape, out.dtype) == ((3, 8), dtype)
    torch.testing.assert_close(out.double(), einsum_dots(x.double(), first, second), rtol=RTOL[dtype], atol=RTOL[dtype] * 7)
    dx = pairwise_dots_backward(grad, x, first, second)
    assert (dx.shape, dx.dtype) == (x.shape, dtype)
    torch.testing.assert_close(dx.double(), einsum_features_grad(grad.double(), x.double(), first, second),
                               rtol=RTOL[dtype], atol=RTOL[dtype] * 10)


def test_fakes_match_real_outputs():
    mode = FakeTensorMode()
    x, first, second, grad = (mode.from_tensor(t) for t in (X.float(), FIRST, SECOND, GRAD.float()))
    with mode:
        out, dx = pairwise_dots(x, first, second), pairwise_dots_backward(grad, x, first, second)
    assert (out.shape, out.dtype, dx.shape, dx.dtype) == ((3, 8), torch.float32, X.shape, torch.float32)
    assert dx.is_contiguous() and out.is_contiguous()


def test_autograd_formula_passes_gradcheck():
    x = X.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: torch.ops.kevolve.pairwise_dots(t, FIRST, SECOND), (x,))


def aot_targets(fn, *inputs, decompositions=None) -> list[str]:
    """The call_function targets of the forward and backward ATen graphs of one compiled fn(*inputs).sum(), traced
    with `decompositions` (a decomposition table; none by default)."""
    seen = []

    def backend(gm, example_inputs):
        from torch._functorch.aot_autograd import aot_module_simplified

        def compiler(graph_module, _):
            seen.extend(str(n.target) for n in graph_module.graph.nodes if n.op == "call_function")
            return graph_module.forward
        return aot_module_simplified(gm, example_inputs, fw_compiler=compiler, bw_compiler=compiler,
                                     decompositions=decompositions)

    torch._dynamo.reset()
    torch.compile(lambda *a: fn(*a).sum(), backend=backend)(*inputs).backward()
    torch._dynamo.reset()
    return seen


def test_backward_graph_holds_the_backward_op():
    seen = aot_targets(lambda t: torch.ops.kevolve.pairwise_dots(t, FIRST, SECOND), X.float().requires_grad_())
    assert "kevolve.pairwise_dots.default" in seen and "kevolve.pairwise_dots_backward.default" in seen


EB_ROWS = (5, 8)
EB_INDICES = [torch.tensor([0, 4, 4, 2]), torch.tensor([7, 1, 1, 1, 0, 3])]
EB_OFFSETS = [torch.tensor([0, 1, 1]), torch.tensor([0, 4, 5])]  # table 0's bag 1 is empty


def one_hot_bags(weight, indices, offsets, mode):
    """Pooled rows as (bag membership matrix) @ (one-hot rows) @ weight, divided by bag sizes in mean mode."""
    bags = torch.zeros(offsets.numel(), indices.numel(), dtype=torch.float64)
    ends = torch.cat([offsets[1:], torch.tensor([indices.numel()])])
    for b, (start, end) in enumerate(zip(offsets.tolist(), ends.tolist())):
        bags[b, start:end] = 1
    if mode == 1:
        bags = bags / bags.sum(1, keepdim=True).clamp_min(1)
    return bags @ torch.eye(weight.shape[0], dtype=torch.float64)[indices] @ weight


@pytest.mark.parametrize("mode", [0, 1])
def test_embedding_bags_matches_one_hot_products_and_passes_gradcheck(mode):
    weights = [torch.randn(rows, 3, generator=g, dtype=torch.float64, requires_grad=True) for rows in EB_ROWS]
    pooled = torch.ops.kevolve.embedding_bags(weights, EB_INDICES, EB_OFFSETS, mode, False)
    for out, w, i, o in zip(pooled, weights, EB_INDICES, EB_OFFSETS):
        torch.testing.assert_close(out, one_hot_bags(w, i, o, mode))
    assert torch.autograd.gradcheck(
        lambda a, b: torch.ops.kevolve.embedding_bags([a, b], EB_INDICES, EB_OFFSETS, mode, False), tuple(weights))


def test_embedding_bags_fakes_match_real_outputs():
    weights = [torch.randn(rows, 3) for rows in EB_ROWS]
    mode = FakeTensorMode()
    fake = [mode.from_tensor(t) for t in weights], [mode.from_tensor(t) for t in EB_INDICES]
    offsets = [mode.from_tensor(torch.cat([o, torch.tensor([i.numel()])])) for o, i in zip(EB_OFFSETS, EB_INDICES)]
    with mode:
        pooled = torch.ops.kevolve.embedding_bags(fake[0], fake[1], offsets, 1, True)
        grads = torch.ops.kevolve.embedding_bags_backward(pooled, fake[1], offsets, list(EB_ROWS), 1, True)
    assert [tuple(p.shape) for p in pooled] == [(3, 3), (3, 3)]
    assert [tuple(w.shape) for w in grads] == [(5, 3), (8, 3)]


@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("include_last_offset", [False, True])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_unclaimed_bags_backward_matches_one_hot_products(mode, include_last_offset, index_dtype):
    """The plain-ATen form an unclaimed kevolve::embedding_bags_backward decomposes to, against the transposed
    one-hot products (empty bags included; with include_last_offset, the last offset is the index count)."""
    grads = [torch.randn(o.numel(), 3, generator=g, dtype=torch.float64) for o in EB_OFFSETS]
    offsets = [torch.cat([o, torch.tensor([i.numel()])]) if include_last_offset else o
               for o, i in zip(EB_OFFSETS, EB_INDICES)]
    got = meaning(torch.ops.kevolve.embedding_bags_backward.default)(
        grads, [i.to(index_dtype) for i in EB_INDICES], [o.to(index_dtype) for o in offsets], list(EB_ROWS), mode,
        include_last_offset)
    for out, grad, rows, i, o in zip(got, grads, EB_ROWS, EB_INDICES, EB_OFFSETS):
        pooling = one_hot_bags(torch.eye(rows, dtype=torch.float64), i, o, mode)  # [bags, rows]
        torch.testing.assert_close(out, pooling.T @ grad)


def test_unclaimed_bags_backward_counts_no_indices():
    """Bag sizes come from the offsets: the decomposition holds no index_add (on CUDA, Inductor lowers it to a
    sorted accumulate per table), and a table of no bags gets a zero gradient."""
    from torch.fx.experimental.proxy_tensor import make_fx

    args = ([torch.randn(o.numel(), 3) for o in EB_OFFSETS], EB_INDICES, EB_OFFSETS, list(EB_ROWS), 0, False)
    graph = make_fx(lambda g, i, o: meaning(torch.ops.kevolve.embedding_bags_backward.default)(
        g, i, o, *args[3:]))(*args[:3]).graph
    targets = {n.target for n in graph.nodes if n.op == "call_function"}
    assert torch.ops.aten._embedding_bag_backward.default in targets
    assert not {torch.ops.aten.index_add.default, torch.ops.aten.index_put.default} & targets
    empty = meaning(torch.ops.kevolve.embedding_bags_backward.default)(
        [torch.ones(0, 3)], [torch.tensor([], dtype=torch.int64)], [torch.tensor([], dtype=torch.int64)], [4], 0, False)
    torch.testing.assert_close(empty[0], torch.zeros(4, 3))


fm_interaction = torch.ops.kevolve.fm_interaction.default
fm_interaction_backward = torch.ops.kevolve.fm_interaction_backward.default
FM_X = torch.randn(3, 5, 7, generator=g, dtype=torch.float64)
FM_PROJECTIONS = {"shared": torch.randn(5, 4, generator=g, dtype=torch.float64),
                  "per sample": torch.randn(3, 5, 4, generator=g, dtype=torch.float64)}
FM_GRAD = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)


def batched(y):
    return y.expand(FM_X.shape[0], *y.shape) if y.dim() == 2 else y


def einsum_fm(x, y):
    """out[b, n, k] = sum over m, d of x[b, n, d] x[b, m, d] y[b, m, k]."""
    return torch.einsum("bnd,bmd,bmk->bnk", x, x, batched(y))


def einsum_fm_grads(grad, x, y):
    """Both gradients of einsum_fm, term by term: x appears twice, y once (summed over the batch when shared)."""
    yb = batched(y)
    grad_x = torch.einsum("bnk,bmd,bmk->bnd", grad, x, yb) + torch.einsum("bmk,bmd,bnk->bnd", grad, x, yb)
    grad_y = torch.einsum("bmk,bmd,bnd->bnk", grad, x, x)
    return grad_x, grad_y.sum(0) if y.dim() == 2 else grad_y


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layout", list(FM_PROJECTIONS))
def test_fm_ops_match_einsum(dtype, layout):
    x, y, grad = FM_X.to(dtype), FM_PROJECTIONS[layout].to(dtype), FM_GRAD.to(dtype)
    out = fm_interaction(x, y)
    assert (out.shape, out.dtype) == ((3, 5, 4), dtype)
    torch.testing.assert_close(out.double(), einsum_fm(x.double(), y.double()), rtol=RTOL[dtype], atol=RTOL[dtype] * 35)
    got = fm_interaction_backward(grad, x, y)
    want = einsum_fm_grads(grad.double(), x.double(), y.double())
    for a, b, t in zip(got, want, (x, y)):
        assert (a.shape, a.dtype) == (t.shape, dtype)
        torch.testing.assert_close(a.double(), b, rtol=RTOL[dtype], atol=RTOL[dtype] * 105)


@pytest.mark.parametrize("layout", list(FM_PROJECTIONS))
def test_fm_fakes_match_real_outputs(layout):
    mode = FakeTensorMode()
    x, y, grad = (mode.from_tensor(t.float()) for t in (FM_X, FM_PROJECTIONS[layout], FM_GRAD))
    with mode:
        out, (dx, dy) = fm_interaction(x, y), fm_interaction_backward(grad, x, y)
    assert (out.shape, dx.shape, dy.shape) == ((3, 5, 4), FM_X.shape, FM_PROJECTIONS[layout].shape)
    assert all(t.dtype == torch.float32 and t.is_contiguous() for t in (out, dx, dy))


@pytest.mark.parametrize("layout", list(FM_PROJECTIONS))
def test_fm_autograd_formula_passes_gradcheck(layout):
    x, y = FM_X.clone().requires_grad_(), FM_PROJECTIONS[layout].clone().requires_grad_()
    assert torch.autograd.gradcheck(torch.ops.kevolve.fm_interaction, (x, y))


def test_fm_backward_graph_holds_the_backward_op():
    seen = aot_targets(torch.ops.kevolve.fm_interaction, FM_X.float().requires_grad_(),
                       FM_PROJECTIONS["shared"].float().requires_grad_())
    assert "kevolve.fm_interaction.default" in seen and "kevolve.fm_interaction_backward.default" in seen


def test_bucketize_clamp_offset_fake_is_contiguous_int64():
    op = torch.ops.kevolve.bucketize_clamp_offset.default
    mode = FakeTensorMode()
    x, borders, column = mode.from_tensor(torch.zeros(9, 4)), mode.from_tensor(torch.zeros(4, 6)), mode.from_tensor(
        torch.zeros(4, 1, dtype=torch.int64))
    with mode:
        out = op(x.t(), borders, column, column, True)
    assert (out.shape, out.dtype, out.is_contiguous()) == ((4, 9), torch.int64, True)
    assert torch_kevolve.patterns.is_pattern_op(op)


EMB_WEIGHT = torch.randn(6, 3, generator=g, dtype=torch.float64)
EMB_INDICES = torch.tensor([[0, 5, 5], [2, 0, 1]])  # 5 twice, 3 and 4 never
EMB_GRAD = torch.randn(2, 3, 3, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("padding_idx", [-1, 5, 0])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_embedding_and_its_gradient_match_one_hot_products(padding_idx, index_dtype):
    one_hot = torch.eye(6, dtype=torch.float64)[EMB_INDICES]  # [2, 3, 6]
    weight = EMB_WEIGHT.clone().requires_grad_()
    out = torch.ops.kevolve.embedding(weight, EMB_INDICES.to(index_dtype), padding_idx)
    torch.testing.assert_close(out, one_hot @ EMB_WEIGHT)
    out.backward(EMB_GRAD)
    want = torch.einsum("bnr,bnd->rd", one_hot, EMB_GRAD)
    if padding_idx >= 0:
        want[padding_idx] = 0
    torch.testing.assert_close(weight.grad, want)


def test_embedding_fakes_match_real_outputs():
    mode = FakeTensorMode()
    weight, indices, grad = (mode.from_tensor(t) for t in (EMB_WEIGHT, EMB_INDICES, EMB_GRAD))
    with mode:
        fakes = (torch.ops.kevolve.embedding(weight, indices, -1),
                 torch.ops.kevolve.embedding_backward(grad, indices, 6, -1, False))
    reals = (torch.ops.kevolve.embedding(EMB_WEIGHT, EMB_INDICES, -1),
             torch.ops.kevolve.embedding_backward(EMB_GRAD, EMB_INDICES, 6, -1, False))
    for fake, real in zip(fakes, reals):
        assert (fake.shape, fake.dtype) == (real.shape, real.dtype)


def test_inductors_decompositions_leave_the_embedding_backward_op_whole():
    """The reason the op exists: under Inductor's decomposition table aten.embedding's backward would be
    decomposed into a scatter before any post-grad pass; kevolve::embedding_backward is not."""
    from torch._inductor.decomposition import select_decomp_table

    seen = aot_targets(lambda w: torch.ops.kevolve.embedding(w, EMB_INDICES, 2), EMB_WEIGHT.float().requires_grad_(),
                       decompositions=select_decomp_table())
    assert "kevolve.embedding_backward.default" in seen
    assert not any("embedding_dense_backward" in t or "index_put" in t for t in seen)
    assert torch_kevolve.patterns.STANDS_FOR[torch.ops.kevolve.embedding_backward.default] == \
        torch.ops.aten.embedding_dense_backward.default
