"""The graph rewrite on CUDA graphs (traced on fake CUDA tensors, no GPU needed): the Triton launch is
spliced into the graph and writes the tensor the graph returns (the trace must not drop it as dead code)."""
import pytest
import torch
from torch._higher_order_ops.triton_kernel_wrap import triton_kernel_wrapper_mutation
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx

from torch_kevolve.backend import rewrite
from torch_kevolve.families import EMBEDDING_BAG, EMBEDDING_BAG_BACKWARD


def _graph_of(fn, *tensors):
    with FakeTensorMode():
        return make_fx(fn)(*(t() for t in tensors))


def _rewrite(gm, family, implementation):
    node = next(n for n in gm.graph.nodes if n.target in family.overloads)
    args = rewrite.positional_args(node)
    problem = family.problem(node.target, rewrite.example_values(args), {})
    impl = family.implementation(implementation)
    rewrite.replace_node(gm.graph, node, impl.build(problem, impl.genomes(problem)[0]), args)
    return gm


def _launch_writes_output(gm):
    launches = [n for n in gm.graph.nodes if n.target is triton_kernel_wrapper_mutation]
    returned = next(n for n in gm.graph.nodes if n.op == "output").args[0]
    return launches and any(returned in n.kwargs["kwargs"].values() for n in launches)


def test_forward_launch_is_in_the_graph_and_writes_the_output():
    gm = _graph_of(lambda w, i, o: torch.ops.aten._embedding_bag(w, i, o)[0],
                   lambda: torch.empty(100, 16, device="cuda"),
                   lambda: torch.zeros(64, dtype=torch.long, device="cuda"),
                   lambda: torch.arange(0, 64, 8, device="cuda"))
    gm = _rewrite(gm, EMBEDDING_BAG, "embedding_bag_triton")
    assert not any(n.target is torch.ops.aten._embedding_bag.default for n in gm.graph.nodes)
    assert _launch_writes_output(gm)


def test_backward_launch_is_in_the_graph_and_writes_the_gradient():
    def backward(grad, indices, offsets, offset2bag, bag_size, max_indices):
        return torch.ops.aten._embedding_bag_backward(grad, indices, offsets, offset2bag, bag_size, max_indices,
                                                      100, False, 0, False, None, -1)

    gm = _graph_of(backward,
                   lambda: torch.empty(8, 16, device="cuda"),
                   lambda: torch.zeros(64, dtype=torch.long, device="cuda"),
                   lambda: torch.arange(0, 64, 8, device="cuda"),
                   lambda: torch.zeros(64, dtype=torch.long, device="cuda"),
                   lambda: torch.zeros(8, dtype=torch.long, device="cuda"),
                   lambda: torch.zeros(8, dtype=torch.long, device="cuda"))
    gm = _rewrite(gm, EMBEDDING_BAG_BACKWARD, "embedding_bag_backward_triton")
    assert not any(n.target is torch.ops.aten._embedding_bag_backward.default for n in gm.graph.nodes)
    assert _launch_writes_output(gm)


@pytest.mark.filterwarnings("error:Attempted to insert a get_attr Node")  # FX's warning for an unregistered constant
def test_a_traced_tensor_constant_is_held_by_the_graph_module():
    def plus_constant(x):
        return x + torch.tensor([1.0, 2.0, 3.0], dtype=x.dtype, device=x.device)

    gm = _graph_of(lambda x: torch.ops.aten.neg(x), lambda: torch.zeros(3))
    node = next(n for n in gm.graph.nodes if n.target is torch.ops.aten.neg.default)
    rewrite.replace_node(gm.graph, node, plus_constant, [next(iter(gm.graph.nodes))])
    gm.graph.lint()
    gm.recompile()
    assert any(n.op == "get_attr" for n in gm.graph.nodes)
    assert torch.equal(gm(torch.tensor([10.0, 20.0, 30.0])), torch.tensor([11.0, 22.0, 33.0]))


def test_a_failed_splice_leaves_the_graph_unchanged():
    def plus_constant(x):
        return x.neg() + torch.tensor([1.0, 2.0, 3.0], dtype=x.dtype, device=x.device)

    traced = _graph_of(lambda x: torch.ops.aten.neg(x), lambda: torch.zeros(3))
    graph = torch.fx.Graph()  # owned by no module: the constant has nowhere to live
    graph.graph_copy(traced.graph, {})
    before = [n.format_node() for n in graph.nodes]
    node = next(n for n in graph.nodes if n.target is torch.ops.aten.neg.default)
    with pytest.raises(ValueError, match="no module owns"):
        rewrite.replace_node(graph, node, plus_constant, [next(iter(graph.nodes))])
    assert [n.format_node() for n in graph.nodes] == before


def test_gemm_split_k_and_operand_copy_are_spliced_into_the_graph():
    """A weight-gradient-like product (M-major a, N-major b) with split-K: both operands copied K-major, the
    partial products and their sum launched, the sum writing the returned tensor."""
    from torch_kevolve.families import GEMM

    gm = _graph_of(lambda g, x: torch.ops.aten.mm(g.t(), x),
                   lambda: torch.empty(512, 128, device="cuda"), lambda: torch.empty(512, 96, device="cuda"))
    node = next(n for n in gm.graph.nodes if n.target in GEMM.overloads)
    args = rewrite.positional_args(node)
    problem = GEMM.problem(node.target, rewrite.example_values(args), {})
    impl = GEMM.implementation("gemm_triton")
    genome = dict(impl.genome_space.default(), SPLIT_K=4)
    assert impl.supports(problem, genome) is None
    rewrite.replace_node(gm.graph, node, impl.build(problem, genome), args)
    launches = [n for n in gm.graph.nodes if n.target is triton_kernel_wrapper_mutation]
    copies = [n for n in gm.graph.nodes if n.target in (torch.ops.aten.clone.default, torch.ops.aten._to_copy.default)]
    assert len(launches) == 2 and len(copies) == 2 and _launch_writes_output(gm)
    assert not any(n.target in GEMM.overloads for n in gm.graph.nodes)
