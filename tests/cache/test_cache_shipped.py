import json
import logging

import pytest

from torch_kevolve.cache import CacheError, ShippedStore, export_records, read_records


def test_export_then_load(tmp_path, make_record, make_key):
    records = sorted((make_record(n) for n in (8, 16)), key=lambda r: r.key.id)
    assert export_records(records, tmp_path / "h100.json") == 2
    assert read_records(tmp_path / "h100.json") == records
    store = ShippedStore(tmp_path)
    assert store.records() == records
    assert store.get(make_key(16)) == records[0]
    assert store.get(make_key(32)) is None


def test_fittest_record_per_key_across_files(tmp_path, make_record, make_key):
    export_records([make_record(fitness=1.5)], tmp_path / "a.json")
    export_records([make_record(fitness=2.5)], tmp_path / "b.json")
    export_records([make_record(fitness=2.0)], tmp_path / "c.json")
    assert ShippedStore(tmp_path).get(make_key()).fitness == pytest.approx(2.5)


def test_fingerprint_follows_contents(tmp_path, make_record):
    export_records([make_record(8)], tmp_path / "a.json")
    first = ShippedStore(tmp_path).fingerprint()
    assert ShippedStore(tmp_path).fingerprint() == first
    export_records([make_record(16)], tmp_path / "b.json")
    assert ShippedStore(tmp_path).fingerprint() != first


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"format": 2, "records": []}',
        '{"records": []}',
        "[1, 2]",
        '{"format": 1, "records": [{"fitness": 2}]}',
    ],
)
def test_malformed_file_skipped_with_a_warning(tmp_path, make_record, make_key, caplog, text):
    export_records([make_record()], tmp_path / "good.json")
    (tmp_path / "bad.json").write_text(text)
    with caplog.at_level(logging.WARNING, logger="torch_kevolve"):
        store = ShippedStore(tmp_path)
    assert store.get(make_key()) is not None
    [warning] = [r for r in caplog.records if r.name == "torch_kevolve"]
    assert warning.levelno == logging.WARNING and "bad.json" in warning.getMessage()


def test_record_with_a_missing_field_rejected(tmp_path, make_record):
    d = make_record().to_dict()
    del d["source_sha256"]
    (tmp_path / "x.json").write_text(json.dumps({"format": 1, "records": [d]}))
    with pytest.raises(CacheError, match=r"x\.json.*missing field.*source_sha256"):
        read_records(tmp_path / "x.json")


def test_package_store_loads():
    ShippedStore().records()


def test_every_shipped_record_matches_the_current_sources():
    """A kernel edit that would make the backend silently skip a shipped winner must drop or re-export it."""
    from torch_kevolve.families import FAMILIES

    current = {i.name: (i.source_sha256(), f.version) for f in FAMILIES for i in f.implementations}
    records = ShippedStore().records()
    assert records
    stale = [r.key.short() for r in records if current.get(r.implementation) != (r.source_sha256, r.family_version)]
    assert not stale, f"shipped records whose kernel changed since they were measured: {stale}"


def test_unchanged_files_are_parsed_once_per_process(tmp_path, make_record, make_key, monkeypatch):
    """Every compile builds a store: the same bytes are not parsed again; changed bytes are."""
    import torch_kevolve.cache.shipped as shipped

    export_records([make_record(8)], tmp_path / "a.json")
    parsed = []
    read = shipped.read_records
    monkeypatch.setattr(shipped, "read_records", lambda path: parsed.append(path) or read(path))
    first, again = ShippedStore(tmp_path), ShippedStore(tmp_path)
    assert len(parsed) == 1 and again.records() == first.records() and again.fingerprint() == first.fingerprint()
    export_records([make_record(16)], tmp_path / "a.json")
    changed = ShippedStore(tmp_path)
    assert len(parsed) == 2 and changed.get(make_key(16)) is not None and changed.get(make_key(8)) is None
