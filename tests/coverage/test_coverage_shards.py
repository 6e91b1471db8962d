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


def test_a_missing_shard_is_named_and_the_others_merge(tmp_path, capsys):
    from torch_kevolve.coverage import json_report, run_coverage
    from torch_kevolve.families.scan.family import SCAN

    part = run_coverage([SCAN], "cpu", limit=1, only=set(SCAN.overloads[1::2]))
    coverage_gpu.shard_path(tmp_path, "coverage", "t", (1, 2)).write_text(json.dumps(json_report(part, "cpu")))
    merged = coverage_gpu.merge_shards(tmp_path, "t", 2, "test", "cpu")
    assert [r.overload for r in merged] == [str(o) for o in SCAN.overloads[1::2]]
    assert "shard 0/2 wrote no coverage file" in capsys.readouterr().out


def test_shards_of_a_rerun_merge_into_the_previous_report(tmp_path):
    """--merge with --update: the shards of a one-family rerun replace that family's rows of the earlier report and
    keep the other family's."""
    from torch_kevolve.coverage import json_report, run_coverage
    from torch_kevolve.families.index_select.family import GATHER
    from torch_kevolve.families.scan.family import SCAN

    previous, out = tmp_path / "previous", tmp_path / "out"
    previous.mkdir()
    out.mkdir()
    before = run_coverage([SCAN, GATHER], "cpu", limit=1)
    stale = [dict(r.to_dict(), passed=0, failed=2) for r in before]
    (previous / "coverage-t.json").write_text(json.dumps(dict(json_report(before, "cpu"), overloads=stale)))
    for i in range(2):
        part = run_coverage([SCAN], "cpu", limit=1, only=set(SCAN.overloads[i::2]))
        coverage_gpu.shard_path(out, "coverage", "t", (i, 2)).write_text(json.dumps(json_report(part, "cpu")))
    coverage_gpu.merge_shards(out, "t", 2, "test", "cpu", previous=previous)
    rows = {d["overload"]: d for d in json.loads((out / "coverage-t.json").read_text())["overloads"]}
    scan, gather = {str(o) for o in SCAN.overloads}, {str(o) for o in GATHER.overloads}
    assert set(rows) == scan | gather
    assert all(rows[o]["failed"] == 0 and rows[o]["passed"] > 0 for o in scan)
    assert all(rows[o]["failed"] == 2 for o in gather)


def test_update_replaces_the_rerun_rows_and_keeps_the_others(tmp_path):
    """A rerun of one family rewrites an earlier report: its rows replaced, the other family's rows kept, in
    family order; a report from another device is refused."""
    import pytest

    from torch_kevolve.coverage import json_report, run_coverage
    from torch_kevolve.coverage.report import environment
    from torch_kevolve.families.index_select.family import GATHER
    from torch_kevolve.families.scan.family import SCAN

    previous, out = tmp_path / "previous", tmp_path / "out"
    previous.mkdir()
    out.mkdir()
    before = run_coverage([SCAN, GATHER], "cpu", limit=1)
    stale = [r.to_dict() for r in before]
    stale[0] = dict(stale[0], passed=0, failed=3)
    (previous / "coverage-t.json").write_text(json.dumps(dict(json_report(before, "cpu"), overloads=stale)))
    timed = {"overload": str(GATHER.overloads[0]), "family": "gather", "dtypes": {}, "eager_us": 2.0,
             "inductor_us": 1.5, "triton_us": 1.0}
    (previous / "speed-t.json").write_text(json.dumps({"rows": [timed]}))
    rerun = run_coverage([SCAN], "cpu", limit=1)
    merged = coverage_gpu.update_reports(previous, out, "t", "test", rerun, None, "cpu")
    assert [r.to_dict() for r in merged] == [r.to_dict() for r in before]
    assert json.loads((out / "speed-t.json").read_text())["rows"] == [timed]
    report = json.loads((previous / "coverage-t.json").read_text())
    (previous / "coverage-t.json").write_text(json.dumps(dict(report, environment="Other GPU, " + environment("cpu"))))
    with pytest.raises(ValueError, match="run the whole coverage"):
        coverage_gpu.update_reports(previous, out, "t", "test", rerun, None, "cpu")


def test_retimed_speed_rows_replace_theirs_and_keep_the_others(tmp_path):
    def row(overload, us):
        return {"overload": overload, "family": "scan", "dtypes": {}, "eager_us": us, "inductor_us": us,
                "triton_us": us}

    old = [row("aten.cumsum.default", 3.0), row("aten.cumprod.default", 4.0)]
    (tmp_path / "speed-t.json").write_text(json.dumps({"rows": old}))
    old_rows = coverage_gpu.previous_speed_rows(tmp_path, "t")
    merged = coverage_gpu.merged_speed_rows(old_rows, [row("aten.cumsum.default", 1.0)])
    assert sorted((r["overload"], r["triton_us"]) for r in merged) == [
        ("aten.cumprod.default", 4.0), ("aten.cumsum.default", 1.0)]


def test_speed_only_needs_the_report_it_retimes(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        coverage_gpu.main([str(tmp_path), "--speed-only"])
    assert "--speed-only needs --update" in capsys.readouterr().err


def test_the_speed_writer_joins_each_rows_so_far_with_the_earlier_report(tmp_path):
    """Each call writes OUT_DIR's speed report: the rows timed so far replacing theirs in --update DIR's report,
    which is read once, when the writer is made."""
    import argparse

    def row(overload, us):
        return {"overload": overload, "family": "scan", "dtypes": {}, "eager_us": us, "inductor_us": us,
                "triton_us": us}

    previous, out = tmp_path / "previous", tmp_path / "out"
    previous.mkdir()
    out.mkdir()
    (previous / "speed-t.json").write_text(json.dumps({"rows": [row("aten.cumsum.default", 3.0),
                                                                row("aten.cumprod.default", 4.0)]}))
    write = coverage_gpu.speed_writer(argparse.Namespace(update=previous, out_dir=out, device_label="t"), "test",
                                       "cpu")
    (previous / "speed-t.json").unlink()
    write([row("aten.cumsum.default", 1.0)])
    rows = json.loads((out / "speed-t.json").read_text())["rows"]
    assert [(r["overload"], r["triton_us"]) for r in rows] == [("aten.cumsum.default", 1.0),
                                                               ("aten.cumprod.default", 4.0)]
