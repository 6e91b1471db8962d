import dataclasses
import json
import random
import sqlite3

import pytest

from tests.writers import run_writers
from torch_kevolve.cache import CacheError, KernelRecord, UserStore, default_cache_dir


def test_put_get_records_purge_round_trip(tmp_path, make_record, make_key):
    store = UserStore(tmp_path / "new" / "dir")
    assert store.get(make_key(8)) is None and store.records() == []
    records = [make_record(n) for n in (8, 16, 32)]
    other = dataclasses.replace(make_record(64), key=dataclasses.replace(make_key(64), family="other"))
    for record in records + [other]:
        assert store.put(record)
    assert store.get(make_key(16)) == records[1]
    assert UserStore(tmp_path / "new" / "dir").records() == sorted(records + [other], key=lambda r: r.key.id)
    assert store.purge("other") == 1
    assert store.purge("missing") == 0
    assert store.purge() == 3
    assert store.records() == []


def test_best_fitness_wins(tmp_path, make_record, make_key):
    store = UserStore(tmp_path)
    assert store.put(make_record(fitness=1.5))
    assert not store.put(make_record(fitness=1.2))
    assert not store.put(make_record(fitness=1.5))
    assert store.get(make_key()).fitness == pytest.approx(1.5)
    assert store.put(make_record(fitness=3.0))
    assert store.get(make_key()).fitness == pytest.approx(3.0)
    assert len(store.records()) == 1


def test_replace_stores_a_less_fit_record(tmp_path, make_record, make_key):
    store = UserStore(tmp_path)
    assert store.put(make_record(fitness=3.0))
    assert store.put(make_record(fitness=1.2), replace=True)
    assert store.get(make_key()).fitness == pytest.approx(1.2)
    assert not store.put(make_record(fitness=1.1))


def test_fingerprint_changes_with_contents_only(tmp_path, make_record):
    store = UserStore(tmp_path)
    seen = [store.fingerprint()]
    store.put(make_record(fitness=1.5))
    seen.append(store.fingerprint())
    store.put(make_record(fitness=1.2))
    assert store.fingerprint() == seen[-1]
    store.put(make_record(fitness=2.0))
    seen.append(store.fingerprint())
    store.purge("other")
    assert store.fingerprint() == seen[-1]
    store.purge()
    seen.append(store.fingerprint())
    assert len(set(seen)) == len(seen)
    assert UserStore(tmp_path).fingerprint() == seen[-1]


def test_put_refuses_a_record_whose_source_does_not_match_its_hash(tmp_path, make_record):
    with pytest.raises(CacheError, match="sha256"):
        UserStore(tmp_path).put(make_record(source="print('evil')"))


def _put_many(directory: str, record_json: str, worker: int, count: int, start) -> None:
    """Spawned writer: `count` records of its own and a contended put on one shared key per step."""
    base = KernelRecord.from_dict(json.loads(record_json))
    store = UserStore(directory)
    start.wait()
    for i in range(count):
        own = dataclasses.replace(base.key, shape=(("n", 1_000_000 * worker + i),))
        assert store.put(dataclasses.replace(base, key=own))
        store.put(dataclasses.replace(base, fitness=1.0 + worker + i / count))


def test_concurrent_writers(tmp_path, make_record, make_key):
    workers, count = 4, 100
    record_json = json.dumps(make_record(fitness=1.0).to_dict())
    assert run_writers(_put_many, [(str(tmp_path), record_json, w, count) for w in range(workers)]) == [0] * workers
    store = UserStore(tmp_path)
    assert len(store.records()) == workers * count + 1
    assert store.get(make_key()).fitness == pytest.approx(workers + (count - 1) / count)
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_random_bytes_file_raises_cache_error(tmp_path):
    store = UserStore(tmp_path)
    store.path.write_bytes(random.Random(0).randbytes(8192))
    with pytest.raises(CacheError) as error:
        store.records()
    assert str(store.path) in str(error.value) and "kevolve cache purge --all" in str(error.value)


def test_truncated_database_raises_cache_error(tmp_path, make_record):
    store = UserStore(tmp_path)
    for n in range(64):
        store.put(make_record(2**n))
    size = store.path.stat().st_size
    assert size > 4 * 4096
    with open(store.path, "r+b") as f:
        f.truncate(size // 3)
    with pytest.raises(CacheError, match="corrupt"):
        UserStore(tmp_path).records()


def test_delete_recovers_from_a_corrupt_database(tmp_path, make_record):
    store = UserStore(tmp_path)
    store.path.write_bytes(b"not a database" * 100)
    with pytest.raises(CacheError):
        store.get(make_record().key)
    store.delete()
    record = make_record()
    assert store.put(record)
    assert store.records() == [record]


def test_database_deleted_by_another_process_is_recreated(tmp_path, make_record):
    store = UserStore(tmp_path)
    store.put(make_record(8))
    UserStore(tmp_path).delete()
    assert store.records() == []
    assert store.put(make_record(16))


def test_unusable_directory_raises_cache_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(CacheError, match="KEVOLVE_CACHE_DIR"):
        UserStore(tmp_path / "file" / "cache").records()


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("KEVOLVE_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("KEVOLVE_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "torch_kevolve"
