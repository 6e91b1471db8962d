"""A bucketize winner measured alone is swapped in only where its saving pays for the fusion with pointwise
neighbours that Inductor loses (torch_kevolve/backend/fusion.py), on the preprocessing modules on CPU: alone
(nothing to fuse), MapId (its output read by a clamp: the op's bytes plus two thirds more) and MBDT (a transposing
copy before it, a clamp and an offset after it: twice the op's bytes, with epilogue patterns off). With them on,
MBDT's copy, search, clamp and offset are one epilogue (kevolve::bucketize_clamp_offset), which a winner of its own
key claims whole, whatever the search alone's winner (refused there) measured; without one it stays as it was.
An embedding lookup concatenated with other features is written by Inductor straight into the cat's output: a
small winner is refused there, and claimed where a product reads the lookup."""
import pytest
import torch
import torch.nn as nn

from benchmarks.models.preprocessing import make
from torch_kevolve.backend.decisions import collect_decisions
from torch_kevolve.cache import KernelRecord, UserStore
from torch_kevolve.families import BUCKETIZE, GATHER
from torch_kevolve.key import DeviceInfo, OpKey
from torch_kevolve.warm import model_problems


CLAMP_OFFSET = "kevolve.bucketize_clamp_offset.default"


def decisions_with_winners(tmp_path, model, inputs, options, family, implementation, fitness_of, **tolerance):
    """The decisions of `model` compiled by kevolve with `options` (cache in tmp_path), after a winner of
    `implementation` (default genome) of `family` was cached for each of its keys at fitness `fitness_of(problem)`
    (None: no winner); the compiled model checked against eager (`tolerance`: assert_close's)."""
    store, impl = UserStore(tmp_path), family.implementation(implementation)
    for _, problem in model_problems(model, inputs, options).values():
        if (fitness := fitness_of(problem)) is not None:
            store.put(KernelRecord.measured(key=OpKey.of(problem, DeviceInfo.of("cpu")), family=family,
                                            implementation=impl, genome=impl.default_genome(problem),
                                            t_ref_us=10.0 * fitness, t_cand_us=10.0, achieved_gbps=None,
                                            stats={"method": "test"}))
    with collect_decisions() as decisions:
        got = torch.compile(model, backend="kevolve", options=options)(*inputs)
    torch.testing.assert_close(got, model(*inputs), **tolerance)
    return decisions


def compiled_decisions(tmp_path, name, fitness, patterns=True, **sizes):
    """The bucketize decisions of module `name` compiled by kevolve with a decomposition winner cached for each of
    its keys, of fitness `fitness` (or `fitness[op]` by the key's op; an op it lacks gets none); the compiled module
    checked against eager."""
    torch._dynamo.reset()
    model, inputs = make(name, 64, "cpu", **sizes)
    options = {"cache_dir": str(tmp_path), "shipped_cache": False, "families": ["bucketize"], "patterns": patterns}
    fitness_of = (lambda p: fitness.get(p.op)) if isinstance(fitness, dict) else (lambda p: fitness)
    decisions = decisions_with_winners(tmp_path, model, inputs, options, BUCKETIZE, "bucketize_decomposition",
                                       fitness_of, rtol=0, atol=0)
    return [d for d in decisions if d.family == "bucketize"]


@pytest.mark.parametrize("name,fitness,claimed", [
    ("bucketize", 1.2, True),  # the graph's input in, its output out: nothing to fuse
    ("map_id", 2.0, False),  # saves 50% of the op's time, the clamp's round trip costs 67%
    ("map_id", 4.0, True),  # saves 75%
])
def test_winners_pay_for_the_fusion_they_break(tmp_path, name, fitness, claimed):
    decisions = compiled_decisions(tmp_path, name, fitness, **({"vocabulary": 1000} if name == "map_id" else {}))
    assert decisions and all(d.claimed == claimed for d in decisions), [(d.op, d.reason) for d in decisions]
    if not claimed:
        assert all("Inductor fuses it with its pointwise neighbours" in d.reason for d in decisions)


def test_mbdt_search_alone_is_left_where_it_breaks_the_fusion(tmp_path):
    """Epilogue patterns off: the copy before and the clamp after cost more than the whole op."""
    decisions = compiled_decisions(tmp_path, "mbdt", 100.0, patterns=False)
    assert [d.op for d in decisions] == ["aten.searchsorted.Tensor"] and not decisions[0].claimed
    assert "Inductor fuses it with its pointwise neighbours" in decisions[0].reason


@pytest.mark.parametrize("right", [False, True])
def test_mbdt_fused_winner_claims_copy_search_clamp_and_offset(tmp_path, right):
    decisions = compiled_decisions(tmp_path, "mbdt", {CLAMP_OFFSET: 1.5, "aten.searchsorted.Tensor": 100.0},
                                   right=right)
    assert [(d.op, d.claimed, d.implementation) for d in decisions] == [
        (CLAMP_OFFSET, True, "bucketize_decomposition")], [d.reason for d in decisions]


def test_mbdt_without_a_fused_winner_stays_as_it_was(tmp_path):
    decisions = compiled_decisions(tmp_path, "mbdt", {})
    assert [(d.op, d.claimed) for d in decisions] == [(CLAMP_OFFSET, False), ("aten.searchsorted.Tensor", False)]
    assert all("no cached kernel" in d.reason for d in decisions)


class LookupThen(nn.Module):
    """A lookup of a trained table, then concatenated with a dense feature (`consumer` "cat") or multiplied by a
    matrix ("mm")."""

    def __init__(self, consumer: str):
        super().__init__()
        self.consumer, self.table, self.w = consumer, nn.Embedding(20, 4), nn.Parameter(torch.randn(4, 3))

    def forward(self, ids, dense):
        rows = self.table(ids)
        return torch.cat([rows, dense], 1) if self.consumer == "cat" else rows @ self.w


@pytest.mark.parametrize("consumer,claimed", [("cat", False), ("mm", True)])
def test_a_lookup_written_into_a_cat_keeps_inductors_fusion(tmp_path, consumer, claimed):
    torch._dynamo.reset()
    model, inputs = LookupThen(consumer), (torch.tensor([1, 5, 5, 19, 0, 7]), torch.randn(6, 2))
    options = {"cache_dir": str(tmp_path), "shipped_cache": False, "families": ["gather"]}
    decisions = decisions_with_winners(tmp_path, model, inputs, options, GATHER, "gather_decomposition", lambda p: 1.2)
    (lookup,) = [d for d in decisions if d.op == "aten.embedding.default"]
    assert lookup.claimed == claimed, lookup.reason
    if not claimed:
        assert "writes it into a cat" in lookup.reason
