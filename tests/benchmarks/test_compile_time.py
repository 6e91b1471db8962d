"""benchmarks.compile_time: contender parsing, and a run on CPU in fresh processes (dlrm_tiny), one contender
failing without stopping the other."""
import json

import pytest

from benchmarks import compile_time


def test_parse_contender():
    assert compile_time.parse_contender("kevolve") == ("kevolve", {})
    assert compile_time.parse_contender("inductor+A=1+B=x=y") == ("inductor", {"A": "1", "B": "x=y"})
    with pytest.raises(ValueError, match="unknown contender"):
        compile_time.parse_contender("eager")
    with pytest.raises(ValueError, match="VAR=VALUE"):
        compile_time.parse_contender("kevolve+A")


def test_fresh_processes_and_a_failing_contender(tmp_path, monkeypatch):
    monkeypatch.chdir(compile_time.Path(compile_time.__file__).parents[1])
    out = tmp_path / "ct.json"
    # an unknown Inductor cpp compiler makes every compile of that contender fail
    status = compile_time.main(["dlrm_tiny", str(out), "--device", "cpu", "--rounds", "1",
                                "--contenders", "inductor,kevolve+CXX=/nonexistent/cc"])
    results = {r["contender"]: r for r in json.loads(out.read_text())["results"]}
    assert status == 1
    ok = results["inductor"]
    assert ok["error"] is None and len(ok["warm_s"]) == 1 and 0 < ok["warm_median_s"] < ok["process_s"][0]
    assert ok["cold_s"] > ok["warm_median_s"]  # the timed process compiled from the caches the priming one filled
    assert ok["cold_new_cache_files"]["inductor"] > 0 and ok["new_cache_files"][0]["inductor"] == 0
    failed = results["kevolve+CXX=/nonexistent/cc"]
    assert failed["error"] and failed["warm_s"] == [] and failed["cold_s"] is None
