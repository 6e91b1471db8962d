"""A bucketize winner measured alone is swapped in only where its saving pays for the fusion with pointwise
neighbours that Inductor loses (torch_kevolve/backend/fusion.py), on the preprocessing modules on CPU: alone
(nothing to fuse), MapId (its output read by a clamp: the op's bytes plus two thirds more) and MBDT (a transposing
copy before it, a clamp and an offset after it: twice the op's bytes)."""
import pytest
import torch

from benchmarks.models.preprocessing import make
from torch_kevolve.backend.decisions import collect_decisions
from torch_kevolve.cache import KernelRecord, UserStore
from torch_kevolve.families import BUCKETIZE
from torch_kevolve.key import DeviceInfo, OpKey
from torch_kevolve.warm import model_problems


def compiled_decisions(tmp_path, name, fitness, **sizes):
    """The bucketize decisions of module `name` compiled by kevolve with a decomposition winner of `fitness`
    cached for each of its keys; the compiled module checked against eager."""
    torch._dynamo.reset()
    model, inputs = make(name, 64, "cpu", **sizes)
    options = {"cache_dir": str(tmp_path), "shipped_cache": False, "families": ["bucketize"]}
    store, impl = UserStore(tmp_path), BUCKETIZE.implementation("bucketize_decomposition")
    for _, problem in model_problems(model, inputs, options).values():
        store.put(KernelRecord.measured(key=OpKey.of(problem, DeviceInfo.of("cpu")), family=BUCKETIZE,
                                        implementation=impl, genome=impl.default_genome(problem),
                                        t_ref_us=10.0 * fitness, t_cand_us=10.0, achieved_gbps=None,
                                        stats={"method": "test"}))
    with collect_decisions() as decisions:
        got = torch.compile(model, backend="kevolve", options=options)(*inputs)
    torch.testing.assert_close(got, model(*inputs), rtol=0, atol=0)
    return [d for d in decisions if d.family == "bucketize"]


@pytest.mark.parametrize("name,fitness,claimed", [
    ("bucketize", 1.2, True),  # the graph's input in, its output out: nothing to fuse
    ("map_id", 2.0, False),  # saves 50% of the op's time, the clamp's round trip costs 67%
    ("map_id", 4.0, True),  # saves 75%
    ("mbdt", 100.0, False),  # the copy before and the clamp after cost more than the whole op
])
def test_winners_pay_for_the_fusion_they_break(tmp_path, name, fitness, claimed):
    decisions = compiled_decisions(tmp_path, name, fitness, **({"vocabulary": 1000} if name == "map_id" else {}))
    assert decisions and all(d.claimed == claimed for d in decisions), [(d.op, d.reason) for d in decisions]
    if not claimed:
        assert all("Inductor fuses it with its pointwise neighbours" in d.reason for d in decisions)
