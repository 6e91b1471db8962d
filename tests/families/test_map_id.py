"""The map_id family (kevolve::map_id, MapId's fused lookup): the Triton searches and the radix decomposition
against MapId's eager ATen ops (exact)
on ids known and unknown, below the first key and past the last, the dtypes' ends, repeated keys, a one-key
vocabulary, a clustered vocabulary (uneven buckets), int32 ids and rows, no ids; the radix bucket starts against
Python's integer arithmetic; generated inputs through check_kernel (which catches a wrong default row); refused
calls and genomes; the epilogue found in MapId's graph and left where the graph is not MapId's; the kernels
compiled for sm_90."""
import pytest
import torch

from benchmarks.models.preprocessing import MapId
from tests.families.test_embedding_bags_sm90_compile import Hopper
from tests.families.test_sm90_compile import captured_launches, compile_for_sm90
from torch_kevolve.backend.decisions import collect_decisions
from torch_kevolve.families import family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import check_kernel
from torch_kevolve.families.map_id import triton_kernel
from torch_kevolve.families.map_id.family import MAP_ID_FAMILY
from torch_kevolve.families.map_id.implementations import DECOMPOSITION, TRITON
from torch_kevolve.patterns.ops import map_id_meaning

OP = torch.ops.kevolve.map_id.default
CPU = torch.device("cpu")
GENOMES = [dict(SEARCH="radix", BUCKET_BITS=10, FANOUT=8, COARSE=256, BLOCK=128, num_warps=4),
           dict(SEARCH="radix", BUCKET_BITS=16, FANOUT=8, COARSE=256, BLOCK=256, num_warps=4),
           dict(SEARCH="binary", BUCKET_BITS=16, FANOUT=8, COARSE=256, BLOCK=128, num_warps=4),
           dict(SEARCH="kary", BUCKET_BITS=16, FANOUT=4, COARSE=256, BLOCK=128, num_warps=4),
           dict(SEARCH="kary", BUCKET_BITS=16, FANOUT=16, COARSE=256, BLOCK=256, num_warps=4),
           dict(SEARCH="coarse", BUCKET_BITS=16, FANOUT=8, COARSE=128, BLOCK=128, num_warps=4),
           dict(SEARCH="coarse", BUCKET_BITS=16, FANOUT=8, COARSE=256, BLOCK=256, num_warps=4)]
g = torch.Generator().manual_seed(0)
I64, I32 = torch.iinfo(torch.int64), torch.iinfo(torch.int32)


def _ids_around(vocabulary: torch.Tensor, n: int) -> torch.Tensor:
    """Keys, their neighbours, random ids, the dtype's ends and the ids just outside the keys' range."""
    info = torch.iinfo(vocabulary.dtype)
    keys = vocabulary[torch.randint(0, vocabulary.numel(), (n,), generator=g)].to(torch.int64)
    near = keys + torch.randint(-1, 2, (n,), generator=g)
    spread = torch.randint(info.min, info.max, (n,), generator=g, dtype=torch.int64)
    first, last = int(vocabulary[0]), int(vocabulary[-1])
    ends = torch.tensor([info.min, info.max, max(first - 1, info.min), min(last + 1, info.max), first, last])
    return torch.cat([keys, near, spread, ends]).clamp(info.min, info.max).to(vocabulary.dtype)


def _call(vocabulary: torch.Tensor, rows_dtype=torch.int64, n: int = 40) -> tuple:
    return (_ids_around(vocabulary, n), vocabulary, torch.randperm(vocabulary.numel(), generator=g).to(rows_dtype),
            vocabulary.numel())


SPREAD = torch.randint(-(1 << 40), 1 << 40, (300,), generator=g).unique()
CALLS = {
    "spread": _call(SPREAD),
    "repeated keys": _call(torch.randint(-50, 50, (120,), generator=g).sort().values),
    "one key": _call(torch.tensor([7])),
    "dtype ends": _call(torch.tensor([I64.min, -3, 0, 5, I64.max])),
    "clustered": _call(torch.cat([torch.arange(100), torch.tensor([1 << 50, 1 << 60])])),
    "int32": _call(torch.randint(I32.min, I32.max, (200,), generator=g, dtype=torch.int32).sort().values,
                   torch.int32),
    "no ids": (torch.zeros(0, dtype=torch.int64), SPREAD, torch.arange(SPREAD.numel()), -1),
}


KERNELS = [(TRITON, genome) for genome in GENOMES] + [(DECOMPOSITION, dict(BUCKET_BITS=bits)) for bits in (10, 16)]


@pytest.mark.parametrize("implementation,genome", KERNELS, ids=lambda k: getattr(k, "name", None) or str(k))
@pytest.mark.parametrize("name", sorted(CALLS))
def test_lookup_matches_mapid_ops(name, implementation, genome):
    ids, vocabulary, rows, default_row = CALLS[name]
    problem = MAP_ID_FAMILY.problem(OP, CALLS[name], {})
    got = implementation.build(problem, genome)(ids, vocabulary, rows, default_row)
    want = map_id_meaning(ids, vocabulary, rows, default_row)
    assert got.dtype == want.dtype and torch.equal(got, want)
    if ids.numel():
        assert (want != default_row).any() and (want == default_row).any()  # both outcomes are exercised


def test_bucket_starts_count_the_keys_of_earlier_buckets():
    vocabulary = torch.cat([SPREAD, torch.arange(40) + int(SPREAD[3])]).sort().values
    bits = 8
    starts = triton_kernel.bucket_starts(vocabulary, dict(BUCKET_BITS=bits, BLOCK=128, num_warps=4))
    first, last = int(vocabulary[0]), int(vocabulary[-1])
    width = (last - first) // (1 << bits) + 1
    buckets = [(int(k) - first) // width for k in vocabulary]
    assert starts.tolist() == [sum(b < bucket for b in buckets) for bucket in range((1 << bits) + 1)]


@pytest.mark.parametrize("implementation,genome", KERNELS[::2], ids=lambda k: getattr(k, "name", None) or str(k))
def test_generated_inputs_pass_the_check(implementation, genome):
    for problem in MAP_ID_FAMILY.example_problems(OP):
        fn = implementation.build(problem, genome)
        assert check_kernel(MAP_ID_FAMILY, problem, fn, CPU, seeds=(0, 1), dists=DISTRIBUTIONS) == 0


def test_check_catches_a_wrong_default_row():
    problem = MAP_ID_FAMILY.example_problems(OP)[0]
    with pytest.raises(Exception):
        check_kernel(MAP_ID_FAMILY, problem, lambda i, v, r, d: map_id_meaning(i, v, r, d + 1), CPU)


def test_generated_vocabularies_are_sorted_and_ids_hit_and_miss():
    problem = MAP_ID_FAMILY.example_problems(OP)[0]
    for dist in DISTRIBUTIONS:
        ids, vocabulary, rows, default_row = MAP_ID_FAMILY.make_inputs(problem, 0, dist, CPU)
        assert torch.equal(vocabulary, vocabulary.sort().values) and rows.numel() == vocabulary.numel()
        found = torch.isin(ids, vocabulary)
        assert found.any() and (~found).any()


def test_roofline_and_family_lookup():
    problem = MAP_ID_FAMILY.problem(OP, CALLS["spread"], {})
    n, length = problem.dim("ids"), problem.dim("length")
    assert MAP_ID_FAMILY.bytes_moved(problem) == n * 16 + min(n, length) * 16
    assert family_for(OP) is MAP_ID_FAMILY


@pytest.mark.parametrize("args,match", [
    ((torch.zeros(2, 3, dtype=torch.int64), SPREAD, torch.arange(SPREAD.numel()), 0), "1-D"),
    ((torch.zeros(3, dtype=torch.int32), SPREAD, torch.arange(SPREAD.numel()), 0), "share a dtype"),
    ((torch.zeros(3), SPREAD.double(), torch.arange(SPREAD.numel()), 0), "int32 / int64"),
    ((torch.zeros(3, dtype=torch.int64), SPREAD[:0], SPREAD[:0], 0), "1 to"),
    ((torch.zeros(3, dtype=torch.int64), SPREAD, torch.arange(5), 0), "one per key"),
    ((torch.zeros(3, dtype=torch.int64), SPREAD, torch.arange(SPREAD.numel(), dtype=torch.int32), 1 << 40), "fit"),
])
def test_refused_calls(args, match):
    with pytest.raises(Unsupported, match=match):
        MAP_ID_FAMILY.problem(OP, args, {})


def test_genomes_the_implementation_refuses():
    small = MAP_ID_FAMILY.problem(OP, CALLS["spread"], {})  # about 300 keys
    assert "no buckets" in TRITON.supports(small, dict(GENOMES[2], BUCKET_BITS=12))
    assert "no buckets" in TRITON.supports(small, dict(GENOMES[3], BUCKET_BITS=12))
    assert "kary search only" in TRITON.supports(small, dict(GENOMES[2], FANOUT=16))
    assert "coarse search only" in TRITON.supports(small, dict(GENOMES[2], COARSE=1024))
    assert TRITON.supports(small, GENOMES[5]) is None
    assert "exceeds" in TRITON.supports(small, dict(GENOMES[4], BLOCK=1024))
    assert TRITON.supports(small, GENOMES[4]) is None
    assert "per key" in TRITON.supports(small, GENOMES[1])
    assert TRITON.supports(small, GENOMES[0]) is None
    large = MAP_ID_FAMILY.problem(OP, (SPREAD, torch.zeros(100_000, dtype=torch.int64),
                                       torch.zeros(100_000, dtype=torch.int64), 0), {})
    assert TRITON.default_genome(large)["SEARCH"] == "radix"
    assert "per key" in DECOMPOSITION.supports(small, dict(BUCKET_BITS=12))
    assert DECOMPOSITION.default_genome(large) == dict(BUCKET_BITS=16)


def _compiled(module: torch.nn.Module, *inputs) -> tuple[torch.Tensor, list]:
    torch._dynamo.reset()
    with collect_decisions() as decisions:
        out = torch.compile(module, backend="kevolve", options={"interpret": True, "families": ["map_id"]})(*inputs)
    torch._dynamo.reset()
    return out, [d for d in decisions if d.claimed]


@pytest.mark.parametrize("shape", [(12, 8), (30,)])
def test_epilogue_replaces_mapids_ops(shape):
    vocabulary, rows = SPREAD, torch.randperm(SPREAD.numel(), generator=g)
    module = MapId(vocabulary, rows, default_row=vocabulary.numel())
    ids = _ids_around(vocabulary, 40)[: torch.Size(shape).numel()].reshape(shape)
    out, claimed = _compiled(module, ids)
    assert torch.equal(out, module(ids))
    assert [(d.op, d.implementation) for d in claimed] == [("kevolve.map_id.default", "map_id_triton")]


class _MapIdAlsoReturningMatches(MapId):
    """MapId that also returns which ids were found: its eq has a second user, so the pattern must not fuse."""

    def forward(self, ids):
        position = torch.bucketize(ids, self.vocabulary).clamp(max=self.vocabulary.numel() - 1)
        found = self.vocabulary.gather(0, position) == ids
        return torch.where(found, self.rows.gather(0, position), self.default_row), found


def test_epilogue_left_where_the_graph_differs():
    module = _MapIdAlsoReturningMatches(SPREAD, torch.randperm(SPREAD.numel(), generator=g), SPREAD.numel())
    ids = _ids_around(SPREAD, 10)
    out, claimed = _compiled(module, ids)
    for got, want in zip(out, module(ids)):
        assert torch.equal(got, want)
    assert claimed == []


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_kernels_compile_for_sm90(monkeypatch, dtype):
    captured = captured_launches(monkeypatch, triton_kernel)
    ids, vocabulary, rows, default_row = CALLS["int32" if dtype == torch.int32 else "spread"]
    problem = MAP_ID_FAMILY.problem(OP, (ids, vocabulary, rows, default_row), {})
    for genome in GENOMES[1:]:
        triton_kernel.map_id({"ids": ids, "vocabulary": vocabulary, "rows": rows},
                             triton_kernel.MapIdCall(problem.dim("ids"), problem.dim("length"), dtype, rows.dtype,
                                                     default_row), genome)
    assert [kernel.fn.__name__ for kernel, _, _ in captured] == ["bucket_starts_kernel"] + ["map_id_kernel"] * 6
    for launch in captured:
        compiled = compile_for_sm90(*launch)
        assert compiled.asm["cubin"] and ".target sm_90" in compiled.asm["ptx"]


@pytest.mark.parametrize("kernel,constexprs,writes", [
    (triton_kernel.bucket_starts_kernel, dict(BUCKET_BITS=10, BLOCK=128), {"starts_ptr"}),
    (triton_kernel.map_id_kernel, dict(SEARCH="radix", BUCKET_BITS=10, FANOUT=8, BLOCK=128), {"out_ptr"}),
    (triton_kernel.map_id_kernel, dict(SEARCH="binary", BUCKET_BITS=10, FANOUT=8, BLOCK=128), {"out_ptr"}),
    (triton_kernel.map_id_kernel, dict(SEARCH="kary", BUCKET_BITS=10, FANOUT=8, BLOCK=128), {"out_ptr"}),
    (triton_kernel.map_id_kernel, dict(SEARCH="coarse", BUCKET_BITS=10, FANOUT=8, COARSE=128, BLOCK=128), {"out_ptr"}),
])
def test_inductor_sees_the_kernels_write_only_their_outputs(monkeypatch, kernel, constexprs, writes):
    """Inductor's analysis of user Triton kernels must not take the vocabulary (whose keys address the counts and
    the positions) for written: it would copy the module's buffer, or order launches wrongly."""
    from triton.runtime import driver
    wrap = pytest.importorskip("torch._higher_order_ops.triton_kernel_wrap")
    if not hasattr(wrap, "identify_accessed_tensors"):
        pytest.skip("this torch analyses user kernels under another name")
    tensors = {"ids_ptr": SPREAD, "vocabulary_ptr": SPREAD, "rows_ptr": SPREAD, "out_ptr": SPREAD.clone(),
               "starts_ptr": torch.zeros(1025, dtype=torch.int32)}
    scalars = {"n": 64, "length": 300, "steps": 9, "stride": 3, "default_row": 300}
    arguments = {name: tensors.get(name, scalars.get(name)) for name in kernel.arg_names if name not in constexprs}
    monkeypatch.setattr(driver, "_active", Hopper())
    accesses = wrap.identify_accessed_tensors(kernel, {**arguments, **constexprs}, {})
    assert {dep.name for dep in accesses.read_writes.writes} == writes
    assert "vocabulary_ptr" in {dep.name for dep in accesses.read_writes.reads}
