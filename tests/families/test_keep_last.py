"""The keep_last family (kevolve::keep_last, batch event truncation's gather): both Triton strategies and the scan
decomposition against the pattern as users write it (exact) on truncated batches, empty segments, positions
before offsets[0] and past total, sources counted from the end of values, int32 indices, float values, nothing
kept; the meaning (whole offsets searched) against it too; generated inputs through check_kernel (which catches a
wrong copy); refused calls and genomes; the epilogue found in BatchEventTruncate's graph, put back as its meaning
where no kernel claims it (left as it was where that fails), and left where the graph differs; batches of varying
totals run one graph, with the cached kernel or put back; a varying user count put back; on a GPU graph (fake CUDA tensors) a cached winner launched through wrap_triton; the kernels
compiled for sm_90 and seen by Inductor to write their output only."""
import logging

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from benchmarks.models.preprocessing import BatchEventTruncate
from tests.families.test_embedding_bags_sm90_compile import Hopper
from tests.families.test_sm90_compile import captured_launches, compile_for_sm90
from torch_kevolve.backend import KevolveOptions, graph_pass, make_dispatcher
from torch_kevolve.backend.decisions import collect_decisions
from torch_kevolve.backend.graph_pass import KevolvePass
from torch_kevolve.cache import UserStore
from torch_kevolve.cache.record import KernelRecord
from torch_kevolve.families import family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import check_kernel
from torch_kevolve.families.keep_last import triton_kernel
from torch_kevolve.families.keep_last.calls import KeepLastCall
from torch_kevolve.families.keep_last.family import KEEP_LAST_FAMILY
from torch_kevolve.families.keep_last.implementations import DECOMPOSITION, TRITON
from torch_kevolve.key import DeviceInfo, OpKey
from torch_kevolve.patterns.epilogues import find_epilogue
from torch_kevolve.patterns.ops import keep_last_meaning

OP = torch.ops.kevolve.keep_last.default
CPU = torch.device("cpu")
GENOMES = [dict(TRITON.genome_space.default(), STRATEGY="segments", SEGMENTS=8, WIDTH=16),
           dict(TRITON.genome_space.default(), STRATEGY="segments", SEGMENTS=16, WIDTH=64),
           dict(TRITON.genome_space.default(), STRATEGY="positions", BLOCK=256)]
g = torch.Generator().manual_seed(0)


def written_by_users(values, ends, kept, offsets, total):
    """The gather as BatchEventTruncate writes it (segments searched in offsets[1:]): the independent reference."""
    position = torch.arange(total)
    segment = torch.bucketize(position, offsets[1:], right=True)
    return values[ends[segment] - kept[segment] + position - offsets[segment]]


def _truncated(lengths: list[int], keep: int, values: torch.Tensor | None = None, index=torch.int64) -> tuple:
    """keep_last's arguments as BatchEventTruncate computes them for segments of `lengths`."""
    lengths = torch.tensor(lengths)
    ends = lengths.cumsum(0)
    kept = lengths.clamp(max=keep)
    offsets = torch.nn.functional.pad(kept.cumsum(0), (1, 0))
    values = torch.randperm(int(ends[-1]), generator=g) if values is None else values
    return values, ends.to(index), kept.to(index), offsets.to(index), int(offsets[-1])


def _shifted_start() -> tuple:
    """offsets[0] = 3: the first segment also owns positions 0 to 2, reading before its kept values."""
    values, ends, kept, offsets, total = _truncated([6, 4, 7], 3)
    return values, ends, kept, offsets + 3, total


def _wrapping() -> tuple:
    """kept exceeds the first segment's end: its first sources are negative, counted from values' end."""
    values, ends, kept, offsets, total = _truncated([2, 9, 5], 4)
    kept[0] = 4
    offsets = torch.nn.functional.pad(kept.cumsum(0), (1, 0))
    return values, ends, kept, offsets, int(offsets[-1])


def _short_total() -> tuple:
    """total below offsets[-1]: the last positions are not asked for."""
    values, ends, kept, offsets, total = _truncated([5, 8, 3, 9], 4)
    return values, ends, kept, offsets, total - 5


CALLS = {
    "truncated": _truncated(torch.randint(0, 30, (40,), generator=g).tolist(), 12),
    "empty segments": _truncated([0, 5, 0, 0, 3, 20, 0], 4),
    "one segment": _truncated([50], 7),
    "nothing kept": _truncated([0, 0, 0], 5, values=torch.arange(3)),
    "int32 index": _truncated([3, 17, 8, 0, 1], 6, index=torch.int32),
    "float values": _truncated([4, 9, 2], 3, values=torch.randn(15, generator=g)),
    "shifted start": _shifted_start(),
    "wrapping sources": _wrapping(),
    "short total": _short_total(),
}


KERNELS = [(TRITON, genome) for genome in GENOMES] + [(DECOMPOSITION, {})]


def _kernel_id(kernel) -> str:
    return getattr(kernel, "name", None) or "-".join(str(v) for v in kernel.values()) or "default"


@pytest.mark.parametrize("implementation,genome", KERNELS, ids=_kernel_id)
@pytest.mark.parametrize("name", sorted(CALLS))
def test_copy_matches_the_patterns_ops(name, implementation, genome):
    args = CALLS[name]
    got = implementation.build(KEEP_LAST_FAMILY.problem(OP, args, {}), genome)(*args)
    want = written_by_users(*args)
    assert got.dtype == want.dtype and torch.equal(got, want)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_meaning_searches_whole_offsets_to_the_same_segments(name):
    assert torch.equal(keep_last_meaning(*CALLS[name]), written_by_users(*CALLS[name]))


def test_the_pattern_keeps_each_users_last_events():
    """The pattern, on a batch small enough to write out: users of 3, 0, 5 and 1 events, keep 2."""
    values = torch.arange(10, 19)
    out = written_by_users(*_truncated([3, 0, 5, 1], 2, values=values))
    assert out.tolist() == [11, 12, 16, 17, 18]


@pytest.mark.parametrize("implementation,genome", KERNELS[1:], ids=_kernel_id)
def test_generated_inputs_pass_the_check(implementation, genome):
    for problem in KEEP_LAST_FAMILY.example_problems(OP):
        fn = implementation.build(problem, genome)
        assert check_kernel(KEEP_LAST_FAMILY, problem, fn, CPU, seeds=(0, 1), dists=DISTRIBUTIONS) == 0


def test_check_catches_a_copy_one_place_off():
    problem = KEEP_LAST_FAMILY.example_problems(OP)[0]
    with pytest.raises(Exception):
        check_kernel(KEEP_LAST_FAMILY, problem, lambda v, e, k, o, t: keep_last_meaning(v, e - 1, k, o, t), CPU)


def test_generated_batches_are_truncations():
    problem = KEEP_LAST_FAMILY.example_problems(OP)[0]
    for dist in DISTRIBUTIONS:
        values, ends, kept, offsets, total = KEEP_LAST_FAMILY.make_inputs(problem, 0, dist, CPU)
        lengths = ends.diff(prepend=ends.new_zeros(1))
        assert (kept <= lengths).all() and int(ends[-1]) <= values.numel()
        assert torch.equal(offsets.diff(), kept) and offsets[0] == 0 and offsets[-1] == total
        assert values.unique().numel() == values.numel()


def test_roofline_and_family_lookup():
    problem = KEEP_LAST_FAMILY.problem(OP, CALLS["truncated"], {})
    assert KEEP_LAST_FAMILY.bytes_moved(problem) == 2 * 8 * problem.dim("total") + 8 * (3 * 40 + 1)
    assert family_for(OP) is KEEP_LAST_FAMILY


def _replaced(position: int, value) -> tuple:
    args = list(CALLS["truncated"])
    args[position] = value
    return tuple(args)


@pytest.mark.parametrize("args,match", [
    (_replaced(0, torch.zeros(500, 2)), "1-D"),
    (_replaced(2, torch.zeros(40, dtype=torch.int32)), "share one dtype"),
    (_replaced(3, torch.zeros(40, dtype=torch.int64)), "offsets one more"),
    ((torch.zeros(3), torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64),
      torch.zeros(1, dtype=torch.int64), 0), "at least one segment"),
    (_replaced(4, -1), "non-negative"),
    (_replaced(0, torch.zeros(3)), "more values kept"),
])
def test_refused_calls(args, match):
    with pytest.raises(Unsupported, match=match):
        KEEP_LAST_FAMILY.problem(OP, args, {})


def test_genomes_the_implementation_refuses():
    problem = KEEP_LAST_FAMILY.problem(OP, CALLS["truncated"], {})
    assert "does not read BLOCK" in TRITON.supports(problem, dict(GENOMES[0], BLOCK=512))
    assert "does not read SEGMENTS, WIDTH" in TRITON.supports(problem, dict(GENOMES[2], SEGMENTS=8, WIDTH=16))
    assert len(TRITON.genomes(problem)) == 5 * 4 * 3 + 4 * 3


def _compiled(module: torch.nn.Module, *inputs) -> tuple:
    torch._dynamo.reset()
    with collect_decisions() as decisions:
        out = torch.compile(module, backend="kevolve", options={"interpret": True, "families": ["keep_last"]})(*inputs)
    torch._dynamo.reset()
    return out, [d for d in decisions if d.claimed]


def _jagged_batch(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    offsets = torch.nn.functional.pad(torch.tensor(lengths).cumsum(0), (1, 0))
    return torch.randperm(int(offsets[-1]), generator=g), offsets


def test_epilogue_replaces_batch_event_truncations_gather():
    module, inputs = BatchEventTruncate(keep=4), _jagged_batch([0, 7, 2, 0, 11, 4, 1])
    out, claimed = _compiled(module, *inputs)
    for got, want in zip(out, module(*inputs)):
        assert torch.equal(got, want)
    assert [(d.op, d.implementation) for d in claimed] == [("kevolve.keep_last.default", "keep_last_triton")]


def _uncached_decisions(tmp_path) -> list:
    """The decisions of BatchEventTruncate compiled by kevolve with no kernel cached (keep_last and bucketize
    families), its outputs checked exact against eager."""
    module, inputs = BatchEventTruncate(keep=4), _jagged_batch([0, 7, 2, 0, 11, 4, 1])
    torch._dynamo.reset()
    with collect_decisions() as decisions:
        out = torch.compile(module, backend="kevolve", options={
            "families": ["keep_last", "bucketize"], "shipped_cache": False, "cache_dir": str(tmp_path)})(*inputs)
    torch._dynamo.reset()
    for got, want in zip(out, module(*inputs)):
        assert torch.equal(got, want)
    return decisions


def test_unclaimed_gather_is_put_back_searching_whole_offsets(tmp_path):
    """With no kernel cached, the gather is put back as keep_last's meaning (torch 2.11's Inductor drops the offset
    of the user's offsets[1:] from its search): the search left to Inductor is over all users + 1 offsets."""
    decisions = _uncached_decisions(tmp_path)
    left = {d.op: d for d in decisions if d.family}
    assert not left["kevolve.keep_last.default"].claimed
    assert left["aten.bucketize.Tensor"].problem.dim("length") == 8


def _varying_batches(tmp_path, batches, **options) -> list:
    """The keep_last decisions of BatchEventTruncate compiled by kevolve over `batches` (lists of lengths), each
    batch's outputs exact against eager."""
    module = BatchEventTruncate(keep=4)
    compiled = torch.compile(module, backend="kevolve", options={
        "families": ["keep_last"], "shipped_cache": False, "cache_dir": str(tmp_path), **options})
    torch._dynamo.reset()
    with collect_decisions() as decisions, torch._dynamo.config.patch(automatic_dynamic_local_pgo=False):
        for lengths in batches:
            inputs = _jagged_batch(lengths)
            for got, want in zip(compiled(*inputs), module(*inputs)):
                assert torch.equal(got, want)
    torch._dynamo.reset()
    return [d for d in decisions if d.op == "kevolve.keep_last.default"]


VARYING_TOTALS = ([0, 7, 2, 0, 11], [3, 9, 1, 6, 0], [5, 5, 0, 12, 2], [9, 9, 9, 9, 9])  # five users each


@pytest.mark.parametrize("genome", [GENOMES[0], GENOMES[2]], ids=["segments", "positions"])
def test_totals_that_vary_run_the_cached_kernel_on_one_graph(genome, tmp_path):
    """The second batch compiles the gather with symbolic values and total, which the cache's winner (keyed by
    the sizes it was compiled with) runs for every later batch too."""
    first = _varying_batches(tmp_path / "probe", VARYING_TOTALS[:1])[0].problem
    UserStore(tmp_path).put(KernelRecord.measured(
        key=OpKey.of(first, DeviceInfo.of(CPU)), family=KEEP_LAST_FAMILY, implementation=TRITON, genome=genome,
        t_ref_us=20.0, t_cand_us=10.0, achieved_gbps=None, stats={"method": "test"}))
    decisions = _varying_batches(tmp_path, VARYING_TOTALS, interpret=True)
    assert [(d.claimed, d.genome) for d in decisions] == [(True, genome), (True, genome)]


def test_totals_that_vary_are_put_back_without_a_kernel(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG, logger="torch_kevolve"):
        decisions = _varying_batches(tmp_path, VARYING_TOTALS)
    assert [d.reason for d in decisions] == ["no cached kernel for this key"] * 2
    assert caplog.text.count("(kevolve.keep_last.default) put back as its meaning") == 2


def test_a_varying_user_count_is_put_back(tmp_path):
    """Users counted anew each batch size ends, kept and offsets by symbols Dynamo cannot relate (the offsets come
    from the graph before the .item() break): the family refuses what it cannot prove is its call, and the
    gather is put back, exact."""
    decisions = _varying_batches(tmp_path, ([0, 7, 2, 0, 11], [3, 9, 1, 6, 0, 2, 8], [5, 5, 0, 12]), interpret=True)
    assert decisions[0].claimed and not decisions[1].claimed
    assert "at other sizes it is not the family's" in decisions[1].reason


def test_a_failing_respell_leaves_the_gather_as_it_was(tmp_path, monkeypatch, caplog):
    def failing_meaning(overload):
        def meaning(*args):
            raise RuntimeError("no meaning today")
        return meaning

    monkeypatch.setattr(graph_pass, "meaning", failing_meaning)
    decisions = _uncached_decisions(tmp_path)
    searches = [d.problem.dim("length") for d in decisions if d.op == "aten.bucketize.Tensor"]
    assert searches == [7] and "putting it back as kevolve.keep_last.default failed: no meaning today" in caplog.text


class _TruncateAlsoReturningUsers(BatchEventTruncate):
    """BatchEventTruncate that also returns each kept event's user: the bucketize has a fourth user, so the pattern
    must not fuse."""

    def forward(self, values, offsets):
        ends = offsets[1:]
        kept = torch.clamp(ends - offsets[:-1], max=self.keep)
        new_offsets = torch.nn.functional.pad(torch.cumsum(kept, 0), (1, 0))
        position = torch.arange(int(new_offsets[-1]), device=values.device)
        user = torch.bucketize(position, new_offsets[1:], right=True)
        return values[ends[user] - kept[user] + position - new_offsets[user]], user


def test_epilogue_left_where_the_graph_differs():
    module, inputs = _TruncateAlsoReturningUsers(keep=3), _jagged_batch([5, 0, 2, 9])
    out, claimed = _compiled(module, *inputs)
    for got, want in zip(out, module(*inputs)):
        assert torch.equal(got, want)
    assert claimed == []


@pytest.mark.parametrize("name", ["truncated", "int32 index"])
def test_kernels_compile_for_sm90(monkeypatch, name):
    captured = captured_launches(monkeypatch, triton_kernel)
    values, ends, kept, offsets, total = CALLS[name]
    call = KeepLastCall(ends.numel(), values.numel(), total, values.dtype, ends.dtype)
    for genome in (GENOMES[1], GENOMES[2]):
        triton_kernel.keep_last({"values": values, "ends": ends, "kept": kept, "offsets": offsets}, call, genome)
    assert [kernel.fn.__name__ for kernel, _, _ in captured] == ["keep_last_segments_kernel",
                                                                 "keep_last_positions_kernel"]
    for launch in captured:
        compiled = compile_for_sm90(*launch)
        assert compiled.asm["cubin"] and ".target sm_90" in compiled.asm["ptx"]


@pytest.mark.parametrize("kernel,constexprs", [
    (triton_kernel.keep_last_segments_kernel, dict(SEGMENTS=16, WIDTH=32)),
    (triton_kernel.keep_last_positions_kernel, dict(BLOCK=256)),
])
def test_inductor_sees_the_kernels_write_only_their_output(monkeypatch, kernel, constexprs):
    """Inductor's analysis of user Triton kernels must find the output written and the batch read only: taking the
    values for written would copy them, or order launches wrongly."""
    from triton.runtime import driver
    wrap = pytest.importorskip("torch._higher_order_ops.triton_kernel_wrap")
    if not hasattr(wrap, "identify_accessed_tensors"):
        pytest.skip("this torch analyses user kernels under another name")
    values, ends, kept, offsets, total = CALLS["truncated"]
    tensors = {"values_ptr": values, "ends_ptr": ends, "kept_ptr": kept, "offsets_ptr": offsets,
               "out_ptr": values.new_empty(total)}
    scalars = {"segments": ends.numel(), "n_values": values.numel(), "total": total, "steps": 6}
    arguments = {name: tensors.get(name, scalars.get(name)) for name in kernel.arg_names if name not in constexprs}
    monkeypatch.setattr(driver, "_active", Hopper())
    accesses = wrap.identify_accessed_tensors(kernel, {**arguments, **constexprs}, {})
    assert {dep.name for dep in accesses.read_writes.writes} == {"out_ptr"}
    assert {dep.name for dep in accesses.read_writes.reads} >= {"values_ptr", "offsets_ptr"}


H200 = DeviceInfo("cuda", "NVIDIA H200", "sm_90")


def _gpu_gather_graph(users: int = 6, n: int = 40, total: int = 20) -> torch.fx.GraphModule:
    """The gather as Inductor's post-grad graph holds it on a GPU, built node by node with fake CUDA tensors as
    values (no GPU needed)."""
    aten, graph = torch.ops.aten, torch.fx.Graph()
    with FakeTensorMode():
        def column(size: int) -> torch.Tensor:
            return torch.empty(size, dtype=torch.int64, device="cuda")

        def node(target, args, kwargs=None, size=total):
            made = graph.call_function(target, args, kwargs or {})
            made.meta["val"] = column(size)
            return made

        values, ends, kept, offsets = (graph.placeholder(name) for name in ("values", "ends", "kept", "offsets"))
        for placeholder, size in ((values, n), (ends, users), (kept, users), (offsets, users + 1)):
            placeholder.meta["val"] = column(size)
        position = node(torch.ops.prims.iota.default, (total,), dict(start=0, step=1, dtype=torch.int64,
                                                                      device=torch.device("cuda"), requires_grad=False))
        view = node(aten.slice.Tensor, (offsets, 0, 1, 9223372036854775807), size=users)
        segment = node(aten.bucketize.Tensor, (position, view), dict(right=True))
        at_end, at_kept, at_start = (node(aten.index.Tensor, (t, [segment])) for t in (ends, kept, offsets))
        shifted = node(aten.add.Tensor, (node(aten.sub.Tensor, (at_end, at_kept)), position))
        graph.output((node(aten.index.Tensor, (values, [node(aten.sub.Tensor, (shifted, at_start))])),))
    return torch.fx.GraphModule(torch.nn.Module(), graph)


def test_a_cached_winner_launches_the_triton_kernel_on_a_gpu_graph(tmp_path, monkeypatch):
    """On a GPU graph the claimed gather becomes the Triton kernel itself, launched through wrap_triton (the path
    the H200 ran), in place of the search and the gathers."""
    from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table
    original = DeviceInfo.of
    monkeypatch.setattr(DeviceInfo, "of", staticmethod(
        lambda device: H200 if torch.device(device).type == "cuda" else original(device)))
    gm = _gpu_gather_graph()
    found = find_epilogue(gm.graph.output_node().args[0][0])
    problem = KEEP_LAST_FAMILY.problem(OP, [a.meta["val"] if hasattr(a, "meta") else a for a in found.args], {})
    UserStore(tmp_path).put(KernelRecord.measured(
        key=OpKey.of(problem, H200), family=KEEP_LAST_FAMILY, implementation=TRITON, genome=GENOMES[1],
        t_ref_us=20.0, t_cand_us=10.0, achieved_gbps=None, stats={"method": "test"}))
    options = KevolveOptions.from_user({"cache_dir": str(tmp_path), "families": ["keep_last"], "shipped_cache": False})
    with collect_decisions() as decisions:
        KevolvePass(options, make_dispatcher(options))(gm.graph)
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert torch.ops.aten.bucketize.Tensor not in targets and torch.ops.aten.index.Tensor not in targets
    launched = [kernel_side_table.get_kernel(n.kwargs["kernel_idx"]) for n in gm.graph.nodes
                if "triton_kernel_wrapper" in str(n.target)]
    assert [kernel.fn.__name__ for kernel in launched] == ["keep_last_segments_kernel"]
    assert [(d.op, d.claimed) for d in decisions] == [("kevolve.keep_last.default", True)]
