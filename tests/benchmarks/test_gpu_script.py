"""benchmarks/gpu.sh's DEADLINE, run with a stand-in python3 whose cache import hangs: the hung phase is stopped,
the next one skipped, and the cache still exported inside the deadline."""
import os
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

STAND_IN = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
case "$*" in
  *"cache import"*) sleep 60 ;;
  *"cache export"*) echo exported > "${@: -1}" ;;
  *tune_candidates*) printf '%s\n' "$@" > "$CALLS.arguments" ;;
esac
"""


def run_gpu_script(tmp_path: Path, *phases: str, **env: str) -> tuple[subprocess.CompletedProcess, float, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(STAND_IN)
    (bin_dir / "python3").chmod(0o755)
    calls = tmp_path / "calls.log"
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls), "DEV": "cpu",
                   "OUT": str(tmp_path / "out"), **env}
    started = time.monotonic()
    done = subprocess.run(["bash", "benchmarks/gpu.sh", *phases], cwd=REPO, env=environment, capture_output=True,
                          text=True, timeout=120)
    return done, time.monotonic() - started, calls


def test_deadline_stops_a_hung_phase_and_still_exports(tmp_path):
    done, seconds, calls = run_gpu_script(tmp_path, "import:a.json", "import:b.json", DEADLINE="14", RESERVE="2")
    assert seconds < 25, done.stdout + done.stderr
    assert "import:a.json: stopped at DEADLINE=14" in done.stdout
    assert "import:b.json: skipped" in done.stdout
    logged = calls.read_text()
    assert "cache import a.json" in logged and "cache import b.json" not in logged
    [exported] = (tmp_path / "out").glob("records-*.json")
    assert exported.read_text() == "exported\n"


def test_without_a_deadline_phases_run_in_order(tmp_path):
    done, _, calls = run_gpu_script(tmp_path, "bogus", "gemm")
    assert "unknown phase bogus" in done.stdout
    lines = calls.read_text().splitlines()
    assert [line.split()[:2] for line in lines] == [["-m", "pip"], ["-m", "benchmarks.gemm"],
                                                    ["-m", "torch_kevolve.cli"]]


def test_micro_runs_every_microbenchmark_or_those_named(tmp_path):
    _, _, calls = run_gpu_script(tmp_path, "micro", "micro:tbe,jagged")
    benches = [line.split()[1] for line in calls.read_text().splitlines() if line.split()[1].startswith("benchmarks.")]
    assert benches == ["benchmarks.tbe", "benchmarks.interaction", "benchmarks.fm_interaction", "benchmarks.jagged",
                       "benchmarks.tbe", "benchmarks.jagged"]


def test_remeasure_passes_the_file_the_keys_and_an_output_named_for_the_device(tmp_path):
    _, _, calls = run_gpu_script(tmp_path, "remeasure:shipped.json", KEYS="map_id|bucketize")
    [line] = [line for line in calls.read_text().splitlines() if "cache remeasure" in line]
    out = tmp_path / "out" / "remeasured-cpu.json"
    assert line == f"-m torch_kevolve.cli cache remeasure shipped.json --keys map_id|bucketize --out {out}"


def test_candidates_reach_tune_candidates_one_argument_each(tmp_path):
    """Genomes hold spaces and quotes: each line of CANDIDATES must arrive as one argument."""
    runs = 'embedding_bags_backward_runs={"BLOCK_N": 8, "BLOCK_D": 128, "ITEMS_PER_PROGRAM": 4, "num_warps": 1}'
    segment = 'embedding_bags_backward_triton={"algorithm": "segment", "BLOCK_N": 8}'
    _, _, calls = run_gpu_script(tmp_path, "candidates:dlrm:embedding_bags_backward", CANDIDATES=f"{runs}\n{segment}")
    arguments = (tmp_path / "calls.log.arguments").read_text().splitlines()
    assert arguments == ["-m", "benchmarks.tune_candidates", "dlrm", "embedding_bags_backward", runs, segment,
                         "--check-model"]
    keyed = tmp_path / "keyed"
    keyed.mkdir()
    run_gpu_script(keyed, "candidates:dlrm:gemm", CANDIDATES=segment, KEYS="addmm_relu|K=1024)")
    arguments = (keyed / "calls.log.arguments").read_text().splitlines()
    assert arguments[-3:] == ["--check-model", "--keys", "addmm_relu|K=1024)"]
