"""The whole fitness landscape of the embedding-bag forward's Triton genome space on some keys, measured on a
GPU: every supported genome checked against the float64 reference and timed against the torch.compile'd
reference, so that searches can be replayed on it offline (benchmarks.landscape_replay).

    python -m benchmarks.landscape OUT.json [--keys 0,1,2,3] [--jobs 15] [--rep-ms 5]

Keys are benchmarks.search_grid.GRID entries; OUT.json is extended key by key (a key already there is
skipped, so a cut run resumes). Compiling is the slow part of an evaluation: `jobs` spawned processes first
compile every genome on the real inputs (filling Triton's on-disk cache), then this process loads, checks and
times each one (CUDA-graph replay, `rep_ms` per genome; the reference is timed before and after the sweep).
Genomes run in this process: the family's kernels are trusted here, a crash ends the run (resume with it).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from benchmarks.search_grid import GRID, TRITON, grid_problem
from torch_kevolve.coverage.report import environment
from torch_kevolve.evolve.evaluation import Status
from torch_kevolve.evolve.judging import Bench, classify, describe
from torch_kevolve.evolve.timing import graphed_us
from torch_kevolve.families import EMBEDDING_BAG
from torch_kevolve.families.checking import Mismatch, as_tuple, compare
from torch_kevolve.key import DeviceInfo, Problem


def _compile_all(problem: dict, genomes: list[dict], device: str) -> int:
    """Run each genome once on the problem's first trial inputs (its kernels compile into Triton's cache);
    the number that ran."""
    problem = Problem.from_dict(problem)
    args = EMBEDDING_BAG.make_inputs(problem, 0, "normal", torch.device(device))
    ran = 0
    for genome in genomes:
        try:
            TRITON.build(problem, genome)(*args)
            ran += 1
        except Exception:  # judged (and reported) by the main process
            pass
    torch.cuda.synchronize()
    return ran


def precompile(problem: Problem, genomes: list[dict], jobs: int, device: str) -> None:
    """Compile `genomes` in `jobs` spawned processes (none when jobs is 0)."""
    if jobs <= 0:
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        list(pool.map(_compile_all, [problem.to_dict()] * jobs, [genomes[i::jobs] for i in range(jobs)],
                      [device] * jobs))


def judge_genome(bench: Bench, genome: dict, rep_ms: int) -> dict:
    """{status, error, us, max_abs_error} of one genome: checked on every trial, then timed."""
    problem, device = bench.problem, bench.device
    try:
        fn = TRITON.build(problem, genome)
        worst = 0.0
        for trial in bench.trials:
            worst = max(worst, compare(EMBEDDING_BAG, problem, as_tuple(fn(*trial.args)), trial.want,
                                       EMBEDDING_BAG.reduced_extent(problem, trial.args)))
        args = bench.trials[0].args
        us = graphed_us(lambda: fn(*args), device, rep_ms=rep_ms)
    except Mismatch as e:
        return {"status": Status.WRONG.value, "error": str(e)[:300], "us": None}
    except Exception as e:
        return {"status": classify(e).value, "error": describe(e)[:300], "us": None}
    return {"status": Status.OK.value, "error": "", "us": us, "max_abs_error": worst}


def measure_key(problem: Problem, device: str, jobs: int, rep_ms: int) -> dict:
    """The key's reference time and every supported genome's result (fitness = reference us / genome us)."""
    genomes = TRITON.genomes(problem)
    started = time.perf_counter()
    precompile(problem, genomes, jobs, device)
    compiled_s = time.perf_counter() - started
    bench = Bench.prepare(EMBEDDING_BAG, problem, torch.device(device), trials=2)
    ref_args = bench.trials[0].args
    ref_before = graphed_us(lambda: bench.reference(*ref_args), bench.device)
    rows = []
    for genome in genomes:
        rows.append({"genome": genome, **judge_genome(bench, genome, rep_ms)})
    ref_after = graphed_us(lambda: bench.reference(*ref_args), bench.device)
    reference_us = (ref_before + ref_after) / 2
    for row in rows:
        row["fitness"] = reference_us / row["us"] if row["us"] else 0.0
    return {"problem": problem.to_dict(), "reference_us": reference_us, "reference_us_before_after": [ref_before, ref_after],
            "floor_us": bench.floor_us, "ceiling_gbps": bench.ceiling_gbps,
            "bytes_moved": EMBEDDING_BAG.bytes_moved(problem),
            "compile_seconds": compiled_s, "seconds": time.perf_counter() - started, "genomes": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--keys", default="0,1,2,3", help="indices into benchmarks.search_grid.GRID")
    p.add_argument("--jobs", type=int, default=15, help="compiling processes (0: compile while timing)")
    p.add_argument("--rep-ms", type=int, default=5, help="CUDA-graph replay time per genome (x10 replays)")
    p.add_argument("--device", default="cuda")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("benchmarks.landscape needs a CUDA device; skipped")
        return 0
    result = json.loads(args.out.read_text()) if args.out.exists() else {
        "environment": environment(args.device), "device": DeviceInfo.of(args.device).__dict__, "keys": []}
    done = {json.dumps(k["problem"], sort_keys=True) for k in result["keys"]}
    for index in args.keys.split(","):
        problem = grid_problem(*GRID[int(index)])
        if json.dumps(problem.to_dict(), sort_keys=True) in done:
            continue
        key = measure_key(problem, args.device, args.jobs, args.rep_ms)
        result["keys"].append(key)
        result.setdefault("commands", []).append("python -m benchmarks.landscape " + " ".join(argv or sys.argv[1:]))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result) + "\n")
        ok = [g for g in key["genomes"] if g["status"] == Status.OK.value]
        best = max(ok, key=lambda g: g["fitness"], default=None)
        print(f"GRID[{index}] {len(key['genomes'])} genomes ({len(ok)} ok) in {key['seconds']:.0f} s "
              f"(compile {key['compile_seconds']:.0f} s): reference {key['reference_us']:.1f} us, best "
              f"{best and best['fitness']:.2f}x {best and json.dumps(best['genome'])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
