"""Calls whose sizes vary from batch to batch (symbolic sizes under dynamic shapes): kevolve compiles a model no
more often than Inductor and matches eager on every batch; families key such calls by their hints without
adding guards, refuse them unless the dims that vary are theirs to vary, and only winners that run every size
replace them (on a GPU graph, fake tensors: the batched embedding-bag forward through wrap_triton)."""
import copy
import dataclasses
import functools
import operator

import pytest
import torch
import torch._dynamo.utils as dynamo_utils
import torch.utils._pytree as pytree
from torch._dynamo.source import ConstantSource
from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv

import torch_kevolve.backend.graph_pass as graph_pass
from benchmarks.models import dlrm, preprocessing, seq
from torch_kevolve.backend import make_dispatcher, size_hints
from torch_kevolve.backend.decisions import collect_decisions
from torch_kevolve.backend.options import KevolveOptions
from torch_kevolve.cache import KernelRecord
from torch_kevolve.cache.store import UserStore
from torch_kevolve.families import EMBEDDING_BAGS, EMBEDDING_BAGS_BACKWARD, family_for, symbolic_sizes
from torch_kevolve.families.base import Unsupported
from torch_kevolve.families.schema import overload_named, schema_values
from torch_kevolve.key import DeviceInfo, OpKey
from torch_kevolve.patterns import INNER_CALLS

FORWARD, BACKWARD = torch.ops.kevolve.embedding_bags.default, torch.ops.kevolve.embedding_bags_backward.default
aten = torch.ops.aten
H200 = DeviceInfo("cuda", "NVIDIA H200", "sm_90")


def _truncation_batch(seed: int) -> tuple:
    g = torch.Generator().manual_seed(seed)
    offsets = torch.nn.functional.pad(torch.randint(0, 9, (16,), generator=g).cumsum(0), (1, 0))
    return torch.randint(0, 1 << 40, (int(offsets[-1]),), generator=g), offsets


def _short_second_batch(seed: int) -> tuple:
    """DLRM batches of 64 samples but the second, of 40 (as a data loader's last batch, before the next epoch)."""
    return dlrm.make_inputs(dataclasses.replace(dlrm.SMALL, batch=40 if seed == 1 else 64), "cpu", seed)


def _short_second_seq_batch(seed: int) -> tuple:
    """seq batches of 6 users but the second, of 4."""
    return seq.make_inputs(dataclasses.replace(seq.TINY, batch=4 if seed == 1 else 6), "cpu", seed)


MODELS = {  # name: (model factory, inputs of batch `seed`, whether it trains)
    "dlrm": (lambda: dlrm.build(dlrm.SMALL, "cpu")[0], lambda s: dlrm.make_inputs(dlrm.SMALL, "cpu", s), True),
    "dlrm_short_batch": (lambda: dlrm.build(dlrm.SMALL, "cpu")[0], _short_second_batch, True),
    "seq": (lambda: seq.build(seq.TINY, "cpu")[0], lambda s: seq.make_inputs(seq.TINY, "cpu", s), True),
    "seq_short_batch": (lambda: seq.build(seq.TINY, "cpu")[0], _short_second_seq_batch, True),
    "batch_event_truncate": (lambda: preprocessing.BatchEventTruncate(3), _truncation_batch, False),
}


def _run_batches(name: str, backend: str, options: dict | None = None, batches: int = 3) -> tuple[int, list]:
    """(graphs compiled, decisions of each batch) of `batches` batches of differing lengths through `name`
    compiled by `backend`; each batch's output (and gradients) checked against eager."""
    factory, inputs_of, trains = MODELS[name]
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = factory()
    twin = copy.deepcopy(model)
    compiled = torch.compile(twin, backend=backend, **({} if options is None else {"options": options}))
    dynamo_utils.counters.clear()
    seen = []
    with torch._dynamo.config.patch(automatic_dynamic_local_pgo=False):  # each run starts from static sizes
        for seed in range(batches):
            inputs = inputs_of(seed)
            want = model(*inputs)
            with collect_decisions() as decisions:
                got = compiled(*inputs)
                if trains:
                    got.backward()
            seen.append(decisions)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
            if trains:
                want.backward()
                for (param, w), g in zip(model.named_parameters(), twin.parameters()):
                    torch.testing.assert_close(g.grad, w.grad, rtol=1e-3, atol=1e-5, msg=param)
                    w.grad = g.grad = None
    graphs = dynamo_utils.counters["stats"]["unique_graphs"]
    torch._dynamo.reset()
    return graphs, seen


@pytest.mark.parametrize("name", list(MODELS))
def test_models_compile_no_more_often_than_under_inductor(name, tmp_path):
    """Before: every family keyed a symbolic size by comparing it, which pinned it, so the DLRM compiled again on
    every batch of new lengths (and after 8, Dynamo would have run it eagerly). Fewer is possible: Inductor's
    decomposition of a small mm guards the batch size (seq's score head, which kevolve's pattern pass rewrites)."""
    inductor, _ = _run_batches(name, "inductor")
    for options in ({}, {"interpret": True}):
        graphs, _ = _run_batches(name, "kevolve", {"cache_dir": str(tmp_path), **options})
        assert graphs <= inductor, options


def test_the_dlrm_graph_of_varying_lengths_runs_the_embedding_bag_kernels(tmp_path):
    """The second batch compiles the graph with symbolic index counts: the batched forward and backward and the
    single-table kernels (the mean and max tables) still run, as they read the counts at run time (before, the
    batched backward stacked the tables' counts into a tensor, which pinned them: the graph went back to one ATen
    backward per table)."""
    _, seen = _run_batches("dlrm", "kevolve", {"cache_dir": str(tmp_path), "interpret": True, "families": [
        "embedding_bags", "embedding_bags_backward", "embedding_bag", "embedding_bag_backward"]})
    claimed = [(d.op, d.implementation) for d in seen[1] if d.claimed]
    assert sorted(claimed) == sorted([
        (str(FORWARD), "embedding_bags_triton"), (str(BACKWARD), "embedding_bags_backward_triton"),
        *[("aten._embedding_bag.default", "embedding_bag_triton")] * 2,
        *[("aten._embedding_bag_backward.default", "embedding_bag_backward_triton")] * 2])
    assert not seen[2]  # the third batch compiled nothing


def test_after_a_short_batch_the_dlrm_graph_runs_the_gemm_interaction_and_embedding_kernels(tmp_path):
    """Before: the batch dim, once symbolic, was static-only in every family here, so the graph that runs every
    later batch (the full ones too: Dynamo tries the newest graph first) ran none of our kernels."""
    _, seen = _run_batches("dlrm_short_batch", "kevolve", {"cache_dir": str(tmp_path), "interpret": True, "families": [
        "gemm", "interaction", "embedding_bags", "embedding_bags_backward", "embedding_bag", "embedding_bag_backward"]})
    claimed = {(d.op, d.implementation) for d in seen[1] if d.claimed}
    assert claimed == {(str(torch.ops.kevolve.addmm_relu.default), "gemm_tf32x3_presplit"),
                       ("aten.addmm.default", "gemm_triton"), ("aten.mm.default", "gemm_triton"),
                       (str(torch.ops.kevolve.pairwise_dots.default), "interaction_triton"),
                       (str(torch.ops.kevolve.pairwise_dots_backward.default), "interaction_triton"),
                       (str(FORWARD), "embedding_bags_triton"), (str(BACKWARD), "embedding_bags_backward_triton"),
                       ("aten._embedding_bag.default", "embedding_bag_triton"),
                       ("aten._embedding_bag_backward.default", "embedding_bag_backward_triton")}
    assert not seen[2]  # the full batch after it ran that graph


def test_the_seq_graph_of_varying_lengths_runs_the_jagged_and_segment_kernels(tmp_path):
    """Histories and category lists of new lengths: the padding, the segment sum and their backwards run our
    kernels on the graph of symbolic rows too (each batch checked against eager)."""
    _, seen = _run_batches("seq", "kevolve", {"cache_dir": str(tmp_path), "interpret": True,
                                              "families": ["jagged", "segment_reduce"]})
    for decisions in seen[:2]:
        assert sorted((d.op, d.implementation) for d in decisions if d.claimed) == [
            ("aten._jagged_to_padded_dense_forward.default", "jagged_triton"),
            ("aten._padded_dense_to_jagged_forward.default", "jagged_triton"),
            ("aten._segment_reduce_backward.default", "segment_reduce_triton"),
            ("aten.segment_reduce.default", "segment_reduce_ends")]
    assert not seen[2]


def test_after_a_short_batch_the_seq_graph_runs_the_jagged_segment_gather_and_bucketize_kernels(tmp_path):
    """The tables' dense backwards among the gather calls (kevolve::embedding). (The tiny model's third batch
    compiles a third graph under Inductor alone too.)"""
    _, seen = _run_batches("seq_short_batch", "kevolve", {"cache_dir": str(tmp_path), "interpret": True, "families": [
        "jagged", "segment_reduce", "gather", "bucketize"]})
    claimed = {(d.op, d.implementation) for d in seen[1] if d.claimed}
    assert {d.op for d in seen[1] if not d.claimed and d.family} == set()
    assert claimed >= {("aten._jagged_to_padded_dense_forward.default", "jagged_triton"),
                       ("aten.segment_reduce.default", "segment_reduce_ends"),
                       ("aten.embedding.default", "gather_triton"), ("aten.bucketize.Tensor", "bucketize_triton"),
                       ("aten.embedding_dense_backward.default", "gather_triton")}


class SymbolicGraph:
    """A one-node post-grad graph of `overload` on the fake values `make_args(size)` returns as (args, kwargs),
    `size(n)` being a symbolic size with hint n; no GPU needed: "meta" tensors stand in for a GPU's, which the CPU
    build of torch cannot fake for every op."""

    def __init__(self, overload, make_args):
        self.overload = overload
        self.shape_env = ShapeEnv()
        self.fake_mode = FakeTensorMode(shape_env=self.shape_env)
        self.graph = torch.fx.Graph()
        with self.fake_mode:
            args, kwargs = make_args(self.size)
            self.values = schema_values(overload, args, kwargs)
            leaves, spec = pytree.tree_flatten((args, kwargs))
            nodes = [self._placeholder(f"arg{k}", leaf) if isinstance(leaf, (torch.Tensor, torch.SymInt)) else leaf
                     for k, leaf in enumerate(leaves)]
            node = self.graph.call_function(overload, *pytree.tree_unflatten(nodes, spec))
            node.meta["val"] = overload(*args, **kwargs)
            if isinstance(node.meta["val"], torch.Tensor):
                self.graph.output((node,))
            else:
                outputs = []
                for t, value in enumerate(node.meta["val"]):
                    outputs.append(self.graph.call_function(operator.getitem, (node, t)))
                    outputs[-1].meta["val"] = value
                self.graph.output(tuple(outputs))
        self.module = torch.fx.GraphModule(torch.nn.Module(), self.graph)

    def size(self, hint: int) -> torch.SymInt:
        symbol = self.shape_env.create_symbol(hint, source=ConstantSource(f"size{len(self.shape_env.var_to_range)}"),
                                              dynamic_dim=DimDynamic.DYNAMIC)
        return self.shape_env.create_symintnode(symbol, hint=hint)

    def _placeholder(self, name: str, value) -> torch.fx.Node:
        node = self.graph.placeholder(name)
        node.meta["val"] = value
        return node

    def offered(self) -> tuple:
        """(overload, values) the call is offered to the families as: a layout op's inner call's, else its own."""
        inner = INNER_CALLS.get(self.overload)
        if inner is None:
            return self.overload, self.values
        with self.fake_mode:
            return inner.overload, inner.arguments(*self.values)

    def problem(self):
        overload, values = self.offered()
        return size_hints.varying_problem(family_for(overload), overload, values)[0]

    def run_pass(self, cache_dir, implementation, monkeypatch) -> list:
        """KevolvePass over the graph, as on an H200 whose cache holds `implementation` (default genome) as the
        winner of the call's key; the decisions on the overload."""
        _put_winner(cache_dir, self.problem(), implementation)
        return self.decisions(cache_dir, monkeypatch)

    def decisions(self, cache_dir, monkeypatch) -> list:
        """KevolvePass over the graph, as on an H200 with the cache in `cache_dir`; the decisions on the
        overload."""
        monkeypatch.setattr(DeviceInfo, "of", staticmethod(lambda device: H200))
        monkeypatch.setattr(graph_pass, "_device_of", lambda node: torch.device("cuda"))
        family = family_for(self.offered()[0])
        options = KevolveOptions.from_user({"cache_dir": str(cache_dir), "families": [family.name],
                                            "shipped_cache": False, "fallback": False})
        with collect_decisions() as decisions:
            graph_pass.KevolvePass(options, make_dispatcher(options))(self.graph)
        return [d for d in decisions if d.op == str(self.overload)]

    def launched(self) -> list:
        return [n for n in self.graph.nodes if "triton_kernel_wrapper" in str(n.target)]


def _put_winner(cache_dir, problem, implementation: str, fitness: float = 2.0, genes: dict | None = None) -> None:
    """Store `implementation` (its default genome, `genes` changed) as the H200's winner of `problem`'s key."""
    family = family_for(overload_named(problem.op))
    impl = family.implementation(implementation)
    UserStore(cache_dir).put(KernelRecord.measured(
        key=OpKey.of(problem, H200), family=family, implementation=impl, genome={**impl.default_genome(problem),
                                                                                 **(genes or {})},
        t_ref_us=10.0 * fitness, t_cand_us=10.0, achieved_gbps=None, stats={"method": "test"}))


@pytest.fixture
def refuse_bool_operands(monkeypatch) -> None:
    """Symbolic ints refuse a bool operand, as torch 2.11's (the GPU's) do: sympy makes the bool a boolean atom
    ("BooleanAtom not allowed in this context"), where torch 2.13's take it as 0 or 1. On the H200
    `count - include_last_offset` failed the lowering of the DLRM's whole graph of symbolic sizes. For the graphs
    traced here as on a GPU (Triton kernels on fake CUDA tensors, decompositions)."""
    for name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__"):
        def refusing(self, other, magic=getattr(torch.SymInt, name), name=name):
            if isinstance(other, bool):
                raise TypeError(f"SymInt.{name} with the bool {other}: BooleanAtom not allowed in this context")
            return magic(self, other)

        monkeypatch.setattr(torch.SymInt, name, refusing)


def _bags(overload, counts=(300, 310), bags: int = 32, device: str = "meta"):
    """make_args of the batched embedding bags of two tables whose index counts are symbolic."""

    def make_args(size):
        indices = [torch.empty(size(n), dtype=torch.int64, device=device) for n in counts]
        offsets = [torch.empty(bags, dtype=torch.int64, device=device) for _ in counts]
        if overload == FORWARD:
            return ([torch.empty(100, 16, device=device) for _ in counts], indices, offsets, 0, False), {}
        return ([torch.empty(bags, 16, device=device) for _ in counts], indices, offsets, [100, 120], 0, False), {}

    return SymbolicGraph(overload, make_args)


@pytest.mark.usefixtures("refuse_bool_operands")
def test_a_gpu_graph_runs_the_batched_forward_at_symbolic_counts(tmp_path, monkeypatch):
    graph = _bags(FORWARD)
    (decision,) = graph.run_pass(tmp_path, "embedding_bags_triton", monkeypatch)
    assert decision.claimed and decision.problem.dim("indices") == 610
    (kernel,) = graph.launched()
    assert [kernel.kwargs["kwargs"][f"num_indices{t}"].target for t in range(2)] == [torch.ops.aten.sym_numel.default] * 2
    assert graph.shape_env.guards == []


@pytest.mark.usefixtures("refuse_bool_operands")
@pytest.mark.parametrize("implementation,claimed", [
    ("embedding_bags_backward_triton", True),
    ("embedding_bags_backward_rows", False),
    ("embedding_bags_backward_decomposition", True),
])
def test_a_gpu_graph_runs_only_backward_winners_that_take_any_count(implementation, claimed, tmp_path, monkeypatch):
    graph = _bags(BACKWARD)
    (decision,) = graph.run_pass(tmp_path, implementation, monkeypatch)
    assert decision.claimed == claimed
    if not claimed:
        assert decision.reason.endswith(f"the winner {implementation} runs static sizes only")
    assert graph.shape_env.guards == []


@pytest.mark.usefixtures("refuse_bool_operands")
def test_the_sweep_backward_pins_no_count(tmp_path, monkeypatch):
    """Its only guard keeps the slots within int32, which every batch below 2**31 indices passes."""
    graph = _bags(BACKWARD)
    (decision,) = graph.run_pass(tmp_path, "embedding_bags_backward_sweep", monkeypatch)
    names = [kernel_side_table.get_kernel(node.kwargs["kernel_idx"]).fn.__name__ for node in graph.launched()]
    assert decision.claimed and names == ["count_slots_kernel", "block_sums_kernel", "scan_blocks_kernel",
                                          "place_slots_kernel", "sweep_rows_kernel"]
    (guard,) = graph.shape_env.guards
    assert str(guard.expr).endswith(" <= 2147483647")


def _offsets(batch: int = 32):
    return torch.empty(batch + 1, dtype=torch.int64, device="meta")


PACKED = {  # the jagged and segment calls of the seq model and batch event truncation's gather, packed rows symbolic
    "to_padded": (aten._jagged_to_padded_dense_forward.default,
                  lambda size: ((torch.empty(size(300), 8, device="meta"), [_offsets()], [20], 0.0), {})),
    "to_jagged": (aten._padded_dense_to_jagged_forward.default,
                  lambda size: ((torch.empty(32, 20, 8, device="meta"), [_offsets()], size(300)), {})),
    "segment_sum": (aten.segment_reduce.default,
                    lambda size: ((torch.empty(size(300), 8, device="meta"), "sum"),
                                  {"lengths": torch.empty(32, dtype=torch.int64, device="meta")})),
    "segment_mean_backward": (aten._segment_reduce_backward.default, lambda size: ((
        torch.empty(32, 8, device="meta"), torch.empty(32, 8, device="meta"), torch.empty(size(300), 8, device="meta"),
        "mean"), {"offsets": _offsets()})),
    "keep_last": (torch.ops.kevolve.keep_last.default, lambda size: ((
        torch.empty(size(300), dtype=torch.int64, device="meta"), *(torch.empty(32, dtype=torch.int64, device="meta")
                                                                     for _ in range(2)), _offsets(), size(200)), {})),
}


def _single_table(backward: bool, mode: int, device: str, symbolic_batch: bool = False):
    """make_args of one table's embedding bag (sum, mean or max) or its backward over a symbolic index count (and
    a symbolic number of bags)."""

    def make_args(size):
        n, bags = size(300), size(32) if symbolic_batch else 32
        indices, offsets = (torch.empty(k, dtype=torch.int64, device=device) for k in (n, bags))
        if not backward:
            return (torch.empty(100, 16, device=device), indices, offsets, False, mode), {}
        maximum = torch.empty((bags, 16) if mode == 2 else (bags,), dtype=torch.int64, device=device)
        return (torch.empty(bags, 16, device=device), indices, offsets, torch.empty(n, dtype=torch.int64, device=device),
                torch.empty(bags, dtype=torch.int64, device=device), maximum, 100, False, mode, False, None), {}

    return make_args


@pytest.mark.usefixtures("refuse_bool_operands")
@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("implementation", ["embedding_bag_triton", "embedding_bag_decomposition",
                                            "embedding_bag_backward_triton", "embedding_bag_backward_decomposition"])
def test_a_gpu_graph_runs_single_table_bags_at_symbolic_counts(implementation, mode, tmp_path, monkeypatch):
    """Triton kernels on fake CUDA tensors (the backward's segment algorithm for sum and mean, atomic for max);
    the decompositions, which never look at the device, on fake CPU ones (the CPU build of torch cannot fake
    every CUDA op they use)."""
    backward = "backward" in implementation
    overload = aten._embedding_bag_backward.default if backward else aten._embedding_bag.default
    device = "cuda" if implementation.endswith("triton") else "cpu"
    graph = SymbolicGraph(overload, _single_table(backward, mode, device))
    (decision,) = graph.run_pass(tmp_path, implementation, monkeypatch)
    assert decision.claimed and bool(graph.launched()) == (device == "cuda")
    assert graph.shape_env.guards == []


@pytest.mark.usefixtures("refuse_bool_operands")
@pytest.mark.parametrize("call", list(PACKED))
@pytest.mark.parametrize("abstraction", ["triton", "decomposition"])
def test_a_gpu_graph_runs_packed_row_kernels_at_symbolic_rows(call, abstraction, tmp_path, monkeypatch):
    overload, make_args = PACKED[call]
    graph = SymbolicGraph(overload, make_args)
    family = family_for(overload)
    (decision,) = graph.run_pass(tmp_path, f"{family.name}_{abstraction}", monkeypatch)
    assert decision.claimed
    assert bool(graph.launched()) == (abstraction == "triton")
    assert graph.shape_env.guards == []


def _meta(*shape, dtype=torch.float32):
    return torch.empty(*shape, dtype=dtype, device="meta")


def _batched(make_args):
    """make_args(size, batch) with one symbolic batch (hint 32) shared by the call's tensors."""
    return lambda size: make_args(size, size(32))


SEQ_BATCHED = {  # the seq model's calls whose batch varies (a short batch), each with a symbolic batch
    "to_padded": (aten._jagged_to_padded_dense_forward.default, _batched(lambda size, b: (
        (_meta(size(300), 8), [_meta(b + 1, dtype=torch.int64)], [20], 0.0), {}))),
    "to_jagged": (aten._padded_dense_to_jagged_forward.default, _batched(lambda size, b: (
        (_meta(b, 20, 8), [_meta(b + 1, dtype=torch.int64)], size(300)), {}))),
    "segment_sum": (aten.segment_reduce.default, _batched(lambda size, b: (
        (_meta(size(300), 8), "sum"), {"lengths": _meta(b, dtype=torch.int64)}))),
    "segment_mean_backward": (aten._segment_reduce_backward.default, _batched(lambda size, b: (
        (_meta(b, 8), _meta(b, 8), _meta(size(300), 8), "mean"), {"offsets": _meta(b + 1, dtype=torch.int64)}))),
    "embedding": (aten.embedding.default, _batched(lambda size, b: ((_meta(100, 16), _meta(b, 5, dtype=torch.int64)),
                                                                    {}))),
    "embedding_backward": (aten.embedding_dense_backward.default, _batched(lambda size, b: (
        (_meta(b, 5, 16), _meta(b, 5, dtype=torch.int64), 100, -1, False), {}))),
    "bucketize": (aten.bucketize.Tensor, _batched(lambda size, b: ((_meta(b, 13), _meta(10)), {}))),
}


@pytest.mark.usefixtures("refuse_bool_operands")
@pytest.mark.parametrize("call", list(SEQ_BATCHED))
@pytest.mark.parametrize("abstraction", ["triton", "decomposition"])
def test_a_gpu_graph_runs_the_seq_kernels_at_a_symbolic_batch(call, abstraction, tmp_path, monkeypatch):
    """Before: jagged and segment calls took only their packed rows symbolic, and gathers and bucketize static
    sizes only, so after a short batch the seq model's graph ran none of these kernels."""
    overload, make_args = SEQ_BATCHED[call]
    graph = SymbolicGraph(overload, make_args)
    (decision,) = graph.run_pass(tmp_path, f"{family_for(overload).name}_{abstraction}", monkeypatch)
    assert decision.claimed, decision.reason
    assert bool(graph.launched()) == (abstraction == "triton")
    assert graph.shape_env.guards == []


SEGMENT_MAX_BY_LENGTHS = {  # the segment kernels that read segment ends, over a symbolic batch of lengths
    "segment_reduce_ends": (aten.segment_reduce.default, _batched(lambda size, b: (
        (_meta(size(300), 8), "max"), {"lengths": _meta(b, dtype=torch.int64)})), "ends_reduce_kernel"),
    "segment_reduce_backward_one_pass": (aten._segment_reduce_backward.default, _batched(lambda size, b: (
        (_meta(b, 8), _meta(b, 8), _meta(size(300), 8), "max"), {"lengths": _meta(b, dtype=torch.int64)})),
        "one_pass_backward_kernel"),
}


@pytest.mark.usefixtures("refuse_bool_operands")
@pytest.mark.parametrize("way", ["block_scan", "block_sums"])
@pytest.mark.parametrize("implementation", list(SEGMENT_MAX_BY_LENGTHS))
def test_a_gpu_graph_finds_segments_from_lengths_each_way_at_a_symbolic_batch(implementation, way, tmp_path,
                                                                               monkeypatch):
    """The block scan's kernel and the block sums' kernel take a symbolic number of segments without a guard (a
    padded view of the lengths, or a buffer of one sum per block, would each cost one)."""
    overload, make_args, kernel = SEGMENT_MAX_BY_LENGTHS[implementation]
    graph = SymbolicGraph(overload, make_args)
    _put_winner(tmp_path, graph.problem(), implementation, genes={"LENGTHS_TO_ENDS": way})
    (decision,) = graph.decisions(tmp_path, monkeypatch)
    assert decision.claimed, decision.reason
    names = [kernel_side_table.get_kernel(node.kwargs["kernel_idx"]).fn.__name__ for node in graph.launched()]
    assert names == [{"block_scan": "lengths_ends_kernel", "block_sums": "block_sums_kernel"}[way], kernel]
    assert graph.shape_env.guards == []


def _holds_at_every_size(shape_env: ShapeEnv) -> bool:
    """Whether each guard of `shape_env` holds with its symbols at sizes far from their hints too: such a guard
    never makes Dynamo compile the graph again."""
    return all(bool(g.expr.xreplace(dict.fromkeys(g.expr.free_symbols, n)))
               for g in shape_env.guards for n in (2, 3, 17, 1000, 65537))


def _batch_of_bags(overload, device: str):
    """make_args of two tables' batched bags whose batch (bags per table) and index counts are symbolic."""

    def make_args(size):
        batch = size(32)
        indices = [torch.empty(size(n), dtype=torch.int64, device=device) for n in (300, 310)]
        offsets = [torch.empty(batch, dtype=torch.int64, device=device) for _ in range(2)]
        if overload == FORWARD:
            return ([torch.empty(100, 16, device=device) for _ in range(2)], indices, offsets, 0, False), {}
        return ([torch.empty(batch, 16, device=device) for _ in range(2)], indices, offsets, [100, 120], 0, False), {}

    return make_args


def _stack_of_bags(backward: bool, device: str):
    """make_args of a head and two tables' bags as one stack (kevolve::embedding_bags_stack), or of the stack's
    backward, the batch and index counts symbolic."""

    def make_args(size):
        batch = size(32)
        indices = [torch.empty(size(n), dtype=torch.int64, device=device) for n in (300, 310)]
        offsets = [torch.empty(batch, dtype=torch.int64, device=device) for _ in range(2)]
        if backward:
            return (torch.empty(batch, 3, 16, device=device), 1, indices, offsets, [100, 120], 0, False), {}
        return ([torch.empty(batch, 16, device=device)], [torch.empty(100, 16, device=device) for _ in range(2)],
                indices, offsets, 0, False), {}

    return make_args


def _linear(device: str):
    return lambda size: ((torch.empty(16, device=device), torch.empty(size(40), 32, device=device),
                          torch.empty(16, 32, device=device).t()), {})


def _weight_gradient(device: str):
    def make_args(size):
        batch = size(40)
        return (torch.empty(batch, 16, device=device).t(), torch.empty(batch, 32, device=device)), {}

    return make_args


def _dots(backward: bool, device: str):
    def make_args(size):
        batch, pairs = size(40), [torch.empty(10, dtype=torch.int64, device=device) for _ in range(2)]
        features = torch.empty(batch, 5, 16, device=device)
        if backward:
            return (torch.empty(batch, 10, device=device), features, *pairs), {}
        return (features, *pairs), {}

    return make_args


BATCHED = {  # the DLRM's calls whose batch varies (a short last batch), each winner that must run them
    "linear": (aten.addmm.default, _linear, ["gemm_triton"]),
    "linear_relu": (torch.ops.kevolve.addmm_relu.default, _linear, ["gemm_tf32x3_presplit"]),
    "weight_gradient": (aten.mm.default, _weight_gradient, ["gemm_triton", "gemm_tf32x3_presplit"]),
    "dots": (torch.ops.kevolve.pairwise_dots.default, functools.partial(_dots, False),
             ["interaction_triton", "interaction_decomposition"]),
    "dots_backward": (torch.ops.kevolve.pairwise_dots_backward.default, functools.partial(_dots, True),
                      ["interaction_triton", "interaction_decomposition"]),
    "bags": (FORWARD, functools.partial(_batch_of_bags, FORWARD),
             ["embedding_bags_triton", "embedding_bags_decomposition"]),
    "bags_backward": (BACKWARD, functools.partial(_batch_of_bags, BACKWARD),
                      ["embedding_bags_backward_triton", "embedding_bags_backward_sweep",
                       "embedding_bags_backward_runs", "embedding_bags_backward_fill_runs",
                       "embedding_bags_backward_decomposition"]),
    "bags_stack": (torch.ops.kevolve.embedding_bags_stack.default, functools.partial(_stack_of_bags, False),
                   ["embedding_bags_triton"]),
    "bags_stack_backward": (torch.ops.kevolve.embedding_bags_stack_backward.default,
                            functools.partial(_stack_of_bags, True),
                            ["embedding_bags_backward_runs", "embedding_bags_backward_fill_runs"]),
    "one_table": (aten._embedding_bag.default, lambda device: _single_table(False, 1, device, symbolic_batch=True),
                  ["embedding_bag_triton", "embedding_bag_decomposition"]),
    "one_table_backward": (aten._embedding_bag_backward.default,
                           lambda device: _single_table(True, 1, device, symbolic_batch=True),
                           ["embedding_bag_backward_triton", "embedding_bag_backward_decomposition"]),
}


@pytest.mark.usefixtures("refuse_bool_operands")
@pytest.mark.parametrize("call,implementation", [(c, i) for c, (_, _, impls) in BATCHED.items() for i in impls])
def test_a_gpu_graph_runs_the_dlrm_kernels_at_a_symbolic_batch(call, implementation, tmp_path, monkeypatch):
    """Before: GEMM, interaction and the embedding bags ran static sizes only, so after one short batch (a data
    loader's last, or a server's) the graph every later batch runs had none of kevolve's kernels. Triton kernels
    on fake CUDA tensors, decompositions on fake CPU ones; the guards left (the 3xTF32 parts' padding of a
    symbolic K, the sweep's int32 slots) hold at every size."""
    overload, make_args, _ = BATCHED[call]
    graph = SymbolicGraph(overload, make_args("cuda" if implementation.endswith(("triton", "sweep", "runs", "presplit"))
                                              else "cpu"))
    (decision,) = graph.run_pass(tmp_path, implementation, monkeypatch)
    assert decision.claimed, decision.reason
    assert overload not in [n.target for n in graph.graph.nodes]
    assert _holds_at_every_size(graph.shape_env), [str(g.expr) for g in graph.shape_env.guards]


def _at(problem, **dims):
    return dataclasses.replace(problem, dims=tuple((n, dims.get(n, v)) for n, v in problem.dims))


def test_a_symbolic_batch_runs_the_winner_measured_at_the_largest_batch(tmp_path, monkeypatch):
    """The graph compiled at a short batch (hint 40) runs the full batches after it: the winner measured at 4096
    rows runs, not the short batch's own, nor that of a key that differs in another dim too."""
    graph = SymbolicGraph(aten.addmm.default, _linear("cuda"))
    problem = graph.problem()
    _put_winner(tmp_path, problem, "gemm_triton", fitness=1.5)
    _put_winner(tmp_path, _at(problem, M=4096), "gemm_tf32x3_presplit", fitness=3.0)
    _put_winner(tmp_path, _at(problem, M=65536, K=64), "gemm_triton", fitness=4.0)
    (decision,) = graph.decisions(tmp_path, monkeypatch)
    assert decision.claimed and decision.implementation == "gemm_tf32x3_presplit"
    assert decision.reason.endswith("at sizes that vary (M), the winner measured at the largest (M=4096), which "
                                    "runs every size")
    assert decision.problem.dim("M") == 40 and _holds_at_every_size(graph.shape_env)


def test_a_static_only_winner_of_a_larger_batch_gives_way_to_one_that_runs_every_size(tmp_path, monkeypatch):
    graph = SymbolicGraph(BACKWARD, _batch_of_bags(BACKWARD, "cuda"))
    problem = graph.problem()
    _put_winner(tmp_path, _at(problem, bags=8192), "embedding_bags_backward_rows", fitness=3.0)
    _put_winner(tmp_path, _at(problem, bags=2048), "embedding_bags_backward_sweep", fitness=2.0)
    (decision,) = graph.decisions(tmp_path, monkeypatch)
    assert decision.claimed and decision.implementation == "embedding_bags_backward_sweep"
    assert decision.reason.endswith("at the largest (indices=1024, bags=2048), which runs every size")


def test_without_a_winner_that_runs_every_size_the_call_is_left_to_inductor(tmp_path, monkeypatch):
    """(On fake CPU tensors: the batched backward left to Inductor is decomposed into ATen's per-table one.)"""
    graph = SymbolicGraph(BACKWARD, _batch_of_bags(BACKWARD, "cpu"))
    _put_winner(tmp_path, _at(graph.problem(), bags=8192), "embedding_bags_backward_rows", fitness=3.0)
    (decision,) = graph.decisions(tmp_path, monkeypatch)
    assert not decision.claimed and decision.reason == "no cached kernel for this key"
    assert graph.shape_env.guards == []


def test_stand_ins_take_the_hints_or_moved_sizes():
    graph = _bags(FORWARD, device="cpu")
    assert symbolic_sizes.is_symbolic(graph.values) and not symbolic_sizes.is_symbolic([torch.empty(3), 4])
    at_hints = symbolic_sizes.stand_ins(graph.values)
    assert [i.shape[0] for i in at_hints[1]] == [300, 310] and at_hints[0][0].shape == (100, 16)
    assert [i.shape[0] for i in symbolic_sizes.stand_ins(graph.values, moved=True)[1]] == [601, 621]
    assert graph.shape_env.guards == []


def test_a_family_refuses_symbolic_dims_it_does_not_take():
    varying_rows = _bags(FORWARD, device="cpu")
    rows = varying_rows.size(100)
    with varying_rows.fake_mode:
        varying_rows.values[0] = [torch.empty(rows, 16) for _ in range(2)]
    with pytest.raises(Unsupported, match="its rows vary at run time"):
        size_hints.varying_problem(EMBEDDING_BAGS, FORWARD, varying_rows.values)
    norm = SymbolicGraph(aten.native_layer_norm.default, lambda size: (
        (torch.empty(size(300), 16), [16], torch.empty(16), torch.empty(16), 1e-5), {}))
    static_family = family_for(aten.native_layer_norm.default)
    assert not static_family.dynamic_dims
    with pytest.raises(Unsupported, match=f"family {static_family.name} runs static sizes only"):
        size_hints.varying_problem(static_family, aten.native_layer_norm.default, norm.values)
    assert norm.shape_env.guards == [] and varying_rows.shape_env.guards == []


def test_a_size_known_only_when_the_graph_runs_is_refused():
    shape_env = ShapeEnv()
    with FakeTensorMode(shape_env=shape_env):
        values = [torch.empty(shape_env.create_unbacked_symint(), dtype=torch.int64)]
    with pytest.raises(Unsupported, match="data-dependent"):
        symbolic_sizes.stand_ins(values)


def test_backward_problems_key_the_hinted_counts():
    graph = _bags(BACKWARD, device="cpu")
    problem, varying = size_hints.varying_problem(EMBEDDING_BAGS_BACKWARD, BACKWARD, graph.values)
    assert (problem.dim("indices"), problem.dim("bags"), problem.dim("rows")) == (610, 64, 220)
    assert varying == {"indices"}
    assert graph.shape_env.guards == []
