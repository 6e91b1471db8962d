"""Sharded coverage runs (benchmarks.coverage_gpu --shard/--merge) join into the unsharded report."""
import json

from benchmarks import coverage_gpu


def test_shards_merge_to_the_unsharded_report(tmp_path):
    """Shard files of a CPU run, joined by merge_shards, give the same overload rows in the same order."""
    from torch_kevolve.coverage import json_report, run_coverage
    from torch_kevolve.families.scan.family import SCAN

    whole = run_coverage([SCAN], "cpu", limit=1)
    for i in range(2):
        only = set(SCAN.overloads[i::2])
        part = run_coverage([SCAN], "cpu", limit=1, only=only)
        coverage_gpu.shard_path(tmp_path, "coverage", "t", (i, 2)).write_text(json.dumps(json_report(part, "cpu")))
    merged = coverage_gpu.merge_shards(tmp_path, "t", 2, "test", "cpu")
    assert [r.to_dict() for r in merged] == [r.to_dict() for r in whole]
    assert json.loads((tmp_path / "coverage-t.json").read_text())["summary"]["proven"] == len(SCAN.overloads)
