import dataclasses
import json

import pytest

from torch_kevolve.cache import CacheError, KernelRecord


def test_json_round_trip(make_record):
    record = make_record(achieved_gbps=812.5)
    assert KernelRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_measured_fills_source_fitness_and_versions(make_record, family):
    record = make_record(fitness=2.5)
    implementation = family.implementations[0]
    assert record.source == implementation.source()
    assert record.source_sha256 == implementation.source_sha256()
    assert record.hash_ok()
    assert record.fitness == pytest.approx(2.5)
    assert record.abstraction == "triton"
    assert record.family_version == "1"
    assert "+" not in record.torch_version and record.torch_version
    assert record.triton_version


def test_measured_refuses_a_key_of_another_family(family, make_key):
    other = dataclasses.replace(make_key(), family="other")
    with pytest.raises(ValueError, match="family"):
        KernelRecord.measured(other, family, family.implementations[0], {"BLOCK": 64}, 2.0, 1.0)


def test_hash_ok_detects_an_edited_source(make_record):
    record = make_record()
    assert not KernelRecord.from_dict({**record.to_dict(), "source": record.source + "# edited\n"}).hash_ok()


def test_missing_field_rejected(make_record):
    d = make_record().to_dict()
    del d["fitness"]
    with pytest.raises(CacheError, match="missing field.*fitness"):
        KernelRecord.from_dict(d)


def test_extra_field_rejected(make_record):
    with pytest.raises(CacheError, match="unexpected field.*speedup"):
        KernelRecord.from_dict({**make_record().to_dict(), "speedup": 2.0})


@pytest.mark.parametrize(
    "field, value",
    [("fitness", "fast"), ("t_ref_us", True), ("genome", [64]), ("source", None), ("achieved_gbps", "1 TB/s"),
     ("key", {"op": "x"}), ("key", "fake.default")],
)
def test_wrong_type_rejected(make_record, field, value):
    with pytest.raises(CacheError, match=f"'{field}'"):
        KernelRecord.from_dict({**make_record().to_dict(), field: value})


def test_not_an_object_rejected():
    with pytest.raises(CacheError, match="JSON object"):
        KernelRecord.from_dict(["not", "a", "record"])


def test_ints_for_floats_and_null_gbps_accepted(make_record):
    d = {**make_record().to_dict(), "t_ref_us": 20, "achieved_gbps": None}
    record = KernelRecord.from_dict(d)
    assert record.t_ref_us == 20.0 and isinstance(record.t_ref_us, float)
    assert record.achieved_gbps is None
