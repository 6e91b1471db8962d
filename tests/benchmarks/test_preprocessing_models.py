"""The preprocessing reference modules against slow per-element Python loops on tiny inputs, their
factories, and the kevolve backend claiming their fused nodes (MBDT: its search, clamp and offset as one
clamped-ids kernel; MapId: its lookup as one kernel; exact vs eager)."""
import math

import pytest
import torch

from benchmarks.models import preprocessing as pp
from torch_kevolve.backend.decisions import collect_decisions

INF = math.inf


def wrap_int64(n: int) -> int:
    return (n + (1 << 63)) % (1 << 64) - (1 << 63)


def test_feature_hash_matches_python_integers():
    ids = [0, 1, -1, 12345, (1 << 62) + 7, -(1 << 63), (1 << 63) - 1, 987654321987]
    module = pp.FeatureHash(rows=1009, shift=7)
    want = [(wrap_int64(i * pp.GOLDEN_MULTIPLIER) >> 7) % 1009 for i in ids]
    got = module(torch.tensor(ids))
    assert got.tolist() == want and all(0 <= r < 1009 for r in want)


@pytest.mark.parametrize("right", [False, True])
def test_bucketize_counts_borders_below(right):
    borders = [-1.0, 0.0, 0.0, 2.5, 7.0]
    values = [-3.0, -1.0, 0.0, 0.5, 2.5, 7.0, 9.0, -INF, INF]
    want = [sum(1 for b in borders if (b <= v if right else b < v)) for v in values]
    got = pp.Bucketize(torch.tensor(borders), right)(torch.tensor(values).reshape(3, 3))
    assert got.flatten().tolist() == want


def test_map_id_looks_up_vocabulary_and_defaults_the_rest():
    vocabulary = [3, 10, 11, 40, 1 << 40]
    rows = [4, 0, 2, 1, 3]
    ids = [[3, 10, 11], [40, 1 << 40, 0], [12, (1 << 40) + 1, -5], [39, 3, 41]]
    table = dict(zip(vocabulary, rows))
    want = [[table.get(i, 99) for i in sample] for sample in ids]
    module = pp.MapId(torch.tensor(vocabulary), torch.tensor(rows), default_row=99)
    assert module(torch.tensor(ids)).tolist() == want


@pytest.mark.parametrize("right", [False, True])
def test_mbdt_buckets_each_feature_by_its_own_borders(right):
    borders = [[0.0, 1.0, 2.0], [-1.0, INF, INF], [5.0, 5.0, INF]]
    lengths = [3, 1, 2]
    x = [[1.0, -1.0, 5.0], [2.5, 0.0, 4.0], [-INF, INF, 6.0], [0.0, -2.0, INF]]
    offsets = [sum(n + 1 for n in lengths[:f]) for f in range(3)]
    want = [[offsets[f] + sum(1 for b in borders[f][:lengths[f]] if (b <= v if right else b < v))
             for f, v in enumerate(sample)] for sample in x]
    module = pp.MBDT(torch.tensor(borders), torch.tensor(lengths), right)
    assert module(torch.tensor(x)).tolist() == want


@pytest.mark.parametrize("keep", [1, 3])
def test_truncate_keeps_the_last_events_of_each_user(keep):
    users = [[], [1, 2, 3, 4, 5], [6], [], [7, 8, 9], [10, 11], []]
    offsets = [0]
    for events in users:
        offsets.append(offsets[-1] + len(events))
    values, new_offsets = pp.BatchEventTruncate(keep)(torch.tensor(sum(users, [])), torch.tensor(offsets))
    want_values, want_offsets = [], [0]
    for events in users:
        last = events[max(len(events) - keep, 0):]
        want_values += last
        want_offsets.append(want_offsets[-1] + len(last))
    assert values.tolist() == want_values and new_offsets.tolist() == want_offsets


def test_truncate_refuses_keeping_nothing():
    with pytest.raises(ValueError, match="at least 1"):
        pp.BatchEventTruncate(0)


@pytest.mark.parametrize("name", list(pp.FACTORIES))
def test_factories_make_runnable_modules(name):
    module, inputs = pp.make(name, 64, "cpu")
    out = module(*inputs)
    first = out[0] if isinstance(out, tuple) else out
    assert first.dtype == torch.int64 and first.numel() > 0


def test_map_id_factory_mixes_known_and_unknown_ids():
    module, (ids,) = pp.make("map_id", 256, "cpu")
    unknown = (module(ids) == module.default_row).float().mean().item()
    assert 0.1 < unknown < 0.3


COMPILED = [  # (module, its sizes, the op claimed, its family, the kernel)
    ("map_id", dict(ids_per_sample=3, vocabulary=50), "kevolve.map_id.default", "map_id", "map_id_triton"),
    ("mbdt", dict(features=6, max_borders=5), "kevolve.bucketize_clamp_offset.default", "bucketize",
     "bucketize_clamp_triton"),
    ("mbdt", dict(features=5, max_borders=4, right=True), "kevolve.bucketize_clamp_offset.default", "bucketize",
     "bucketize_clamp_triton"),
    ("batch_event_truncate", dict(keep=5, longest=12), "kevolve.keep_last.default", "keep_last", "keep_last_triton"),
]


@pytest.mark.parametrize("name,sizes,op,family,kernel", COMPILED)
def test_kevolve_claims_the_fused_node_and_stays_exact(name, sizes, op, family, kernel, tmp_path):
    torch._dynamo.reset()
    module, inputs = pp.make(name, 16, "cpu", **sizes)
    compiled = torch.compile(module, backend="kevolve", options={"interpret": True, "cache_dir": str(tmp_path),
                                                                 "families": [family]})
    with collect_decisions() as decisions:
        got = compiled(*inputs)
    claimed = [(d.op, d.family, d.implementation) for d in decisions if d.claimed]
    assert claimed == [(op, family, kernel)]
    want = module(*inputs)
    for g, w in zip(got, want) if isinstance(want, tuple) else [(got, want)]:
        assert torch.equal(g, w)
