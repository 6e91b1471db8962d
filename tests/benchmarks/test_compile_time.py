"""benchmarks.compile_time: contender parsing, the profile summary, and a profiled run on CPU in fresh processes
(dlrm_tiny), one contender failing without stopping the other."""
import cProfile
import json
import time

import pytest

from benchmarks import compile_time


def test_parse_contender():
    assert compile_time.parse_contender("kevolve") == ("kevolve", {})
    assert compile_time.parse_contender("inductor+A=1+B=x=y") == ("inductor", {"A": "1", "B": "x=y"})
    with pytest.raises(ValueError, match="unknown contender"):
        compile_time.parse_contender("eager")
    with pytest.raises(ValueError, match="VAR=VALUE"):
        compile_time.parse_contender("kevolve+A")


def _busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _outer():
    _busy(0.05)
    _busy(0.05)


def test_top_functions_ranks_by_cumulative_and_own_time():
    profile = cProfile.Profile()
    profile.enable()
    _outer()
    profile.disable()
    top = compile_time.top_functions(profile, 2)
    cumulative = {row["function"].rsplit("(", 1)[1]: row for row in top["by_cumulative"]}
    assert set(cumulative) == {"_outer)", "_busy)"} and len(top["by_own"]) == 2
    assert cumulative["_busy)"]["calls"] == 2 and cumulative["_outer)"]["cumulative_s"] >= 0.1
    assert top["by_own"][0]["own_s"] >= top["by_own"][1]["own_s"]
    assert any(row["function"].endswith("(_busy)") for row in top["by_own"])  # its loop, beside perf_counter


def test_fresh_processes_and_a_failing_contender(tmp_path, monkeypatch):
    monkeypatch.chdir(compile_time.Path(compile_time.__file__).parents[1])
    out = tmp_path / "ct.json"
    # an unknown Inductor cpp compiler makes every compile of that contender fail
    status = compile_time.main(["dlrm_tiny", str(out), "--device", "cpu", "--rounds", "1",
                                "--contenders", "inductor,kevolve+CXX=/nonexistent/cc", "--profile", "3"])
    results = {r["contender"]: r for r in json.loads(out.read_text())["results"]}
    assert status == 1
    ok = results["inductor"]
    assert ok["error"] is None and len(ok["warm_s"]) == 1 and 0 < ok["warm_median_s"] < ok["process_s"][0]
    assert ok["cold_s"] > ok["warm_median_s"]  # the timed process compiled from the caches the priming one filled
    assert ok["cold_new_cache_files"]["inductor"] > 0 and ok["new_cache_files"][0]["inductor"] == 0
    assert ok["triton_compiled"] == [[]]  # nothing compiled by Triton on CPU
    top = ok["profiles"][0]["by_cumulative"]
    assert len(top) == 3 and top[0]["cumulative_s"] <= ok["warm_s"][0] * 1.5
    failed = results["kevolve+CXX=/nonexistent/cc"]
    assert failed["error"] and failed["warm_s"] == [] and failed["cold_s"] is None


def test_compiled_kernels_names_new_binaries():
    files = {"/c/ab/gemm_kernel.cubin", "/c/ab/gemm_kernel.json", "/c/cd/zero_kernel.cubin", "/c/cd/__grp__x.json"}
    assert compile_time.compiled_kernels(files) == ["gemm_kernel", "zero_kernel"]
