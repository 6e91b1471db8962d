"""Warm-cache compile time as a user meets it: every measurement is a fresh Python process that builds the model,
compiles it and runs its first training step, over the on-disk caches (Inductor's and Triton's) that an earlier
process of the same contender filled (kevolve's kernel caches are those of the environment: KEVOLVE_CACHE_DIR and
the shipped ones). Unlike the in-process measurement of benchmarks.harness (warm_call_s), nothing in memory stays
warm between measurements: not Triton's loaded kernels, not the CUDA context, not Inductor's compile workers.

    python -m benchmarks.compile_time NAME OUT.json [--device cuda] [--contenders inductor,kevolve] [--rounds 3]
                                                    [--profile N]

A contender is `inductor` or `kevolve`, optionally followed by `+VAR=VALUE` settings of its processes'
environment (e.g. `kevolve+TORCHINDUCTOR_COMPILE_THREADS=1`). Each contender has its own scratch cache
directory: one priming process on cold caches (`cold_s`), then --rounds timed ones, the contenders taking turns
round by round (so that a drift of the machine touches all alike); the JSON is rewritten after every round.
Each process reports the seconds from torch.compile to the end of the first training step (synchronised) and
the kernels Inductor's async compile was asked to load (names), how many of them came from the FX graph cache's
bundle of statically launched kernels (`static_kernels`), how the graph caches answered
(benchmarks.harness.cache_answers), how many files Inductor's and Triton's on-disk caches gained and the kernels whose
binaries Triton's gained (`triton_compiled`: a warm process that adds any compiled kernels again); the parent adds
each process's whole wall time (imports and model building included).
With --profile N, each process also runs its compile and first step under cProfile and reports the N functions of
the most cumulative time and the N of the most own time (`profiles`, one per timed round). cProfile slows
Python code, so the seconds of a profiled run only compare with those of other profiled runs.
A contender whose process fails is recorded with the tail of its output and not run again; the others go on
(exit status 1).
"""
from __future__ import annotations

import argparse
import cProfile
import datetime
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch._dynamo.utils import counters

from torch_kevolve.key import DeviceInfo

from .child_process import run_to_end

CONTENDERS = ("inductor", "kevolve")
RESULT = "COMPILE_TIME_RESULT "  # the child's result line on stdout


def parse_contender(text: str) -> tuple[str, dict[str, str]]:
    """`kevolve+A=1+B=2` -> ("kevolve", {"A": "1", "B": "2"}); raises ValueError on an unknown contender or a
    setting without `=`."""
    name, *settings = text.split("+")
    if name not in CONTENDERS:
        raise ValueError(f"unknown contender {name!r}: expected one of {', '.join(CONTENDERS)}")
    env = {}
    for setting in settings:
        var, eq, value = setting.partition("=")
        if not eq or not var:
            raise ValueError(f"contender setting {setting!r} is not VAR=VALUE")
        env[var] = value
    return name, env


def _recording_async_compile(names: list[str]) -> None:
    """Append the name of every kernel Inductor's async compile is asked for to `names`."""
    from torch._inductor.async_compile import AsyncCompile

    triton = AsyncCompile.triton

    def recorded(self, kernel_name, *args, **kwargs):
        names.append(kernel_name)
        return triton(self, kernel_name, *args, **kwargs)

    AsyncCompile.triton = recorded


CACHE_DIRS = {"inductor": "TORCHINDUCTOR_CACHE_DIR", "triton": "TRITON_CACHE_DIR"}  # on-disk caches, by variable


def cache_files() -> dict[str, set[str]]:
    """Paths of the files in each on-disk cache (CACHE_DIRS) this process's environment names, by cache."""
    paths = {}
    for cache, var in CACHE_DIRS.items():
        root = os.environ.get(var)
        paths[cache] = {os.path.join(d, f) for d, _, files in os.walk(root) for f in files} if root else set()
    return paths


def compiled_kernels(new_triton_files: set[str]) -> list[str]:
    """The kernels whose binaries (*.cubin) are among `new_triton_files`, by name, sorted."""
    return sorted(os.path.basename(f)[:-len(".cubin")] for f in new_triton_files if f.endswith(".cubin"))


def top_functions(profile: cProfile.Profile, count: int) -> dict[str, list[dict]]:
    """The `count` functions of the most cumulative and of the most own time in `profile`, each as
    {function: "file:line(name)", calls, own_s, cumulative_s}."""
    rows = [{"function": f"{file}:{line}({name})", "calls": calls, "own_s": round(own, 4),
             "cumulative_s": round(cumulative, 4)}
            for (file, line, name), (_, calls, own, cumulative, _) in pstats.Stats(profile).stats.items()]
    return {"by_cumulative": sorted(rows, key=lambda r: -r["cumulative_s"])[:count],
            "by_own": sorted(rows, key=lambda r: -r["own_s"])[:count]}


def child(benchmark: str, contender: str, device_name: str, profile: int = 0) -> dict:
    """Build, compile and run one training step of `benchmark` as `contender`: seconds, the kernels Inductor's
    async compile loaded, the graph caches' answers, the files each on-disk cache gained and the kernels Triton
    compiled (compiled_kernels); with `profile` > 0, also that many top functions of a cProfile
    of the compile and step (top_functions)."""
    from .harness import cache_answers, sync, train_step
    from .run import BENCHMARKS

    device = torch.device(device_name)
    torch.manual_seed(0)
    model, inputs = BENCHMARKS[benchmark].factory(device_name)
    names: list[str] = []
    _recording_async_compile(names)
    backend = {"backend": "kevolve"} if contender == "kevolve" else {}
    files_before = cache_files()
    profiler = cProfile.Profile() if profile else None
    sync(device)
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    train_step(torch.compile(model, **backend), inputs)
    sync(device)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - start
    new_files = {cache: paths - files_before[cache] for cache, paths in cache_files().items()}
    result = {"seconds": seconds, "async_compiled": names, "caches": cache_answers(),
              "new_cache_files": {cache: len(paths) for cache, paths in new_files.items()},
              "triton_compiled": compiled_kernels(new_files["triton"]),
              "static_kernels": counters["inductor"]["triton_bundler_load_static_autotuner"]}
    if profiler:
        result["profile"] = top_functions(profiler, profile)
    return result


def run_child(benchmark: str, contender: str, env: dict[str, str], device: str, profile: int = 0) -> dict:
    """One fresh process of `contender` with `env` added (profiled as `child` says); its result and wall time.
    Raises RuntimeError with the tail of its output if it fails."""
    command = [sys.executable, "-m", "benchmarks.compile_time", benchmark, "-", "--device", device,
               "--child", contender, "--profile", str(profile)]
    start = time.perf_counter()
    code, out, err = run_to_end(command, {**os.environ, **env}, capture_stdout=True)
    wall = time.perf_counter() - start
    lines = [line for line in out.splitlines() if line.startswith(RESULT)]
    if code != 0 or not lines:
        raise RuntimeError(f"{contender} exited {code}:\n{(out + err)[-3000:]}")
    return {**json.loads(lines[-1][len(RESULT):]), "process_s": wall}


@dataclass
class Contender:
    """A contender's label, its own scratch cache directory and the environment of its processes, and what they
    reported: the priming process (`cold`) and each timed round."""

    label: str
    name: str
    env: dict[str, str]
    cold: dict | None = None
    rounds: list[dict] = field(default_factory=list)
    error: str | None = None

    @staticmethod
    def of(label: str, scratch: str) -> "Contender":
        name, settings = parse_contender(label)
        cache = f"{scratch}/{len(os.listdir(scratch))}"
        os.makedirs(cache)
        return Contender(label, name, {**settings, "TORCHINDUCTOR_CACHE_DIR": f"{cache}/inductor",
                                       "TRITON_CACHE_DIR": f"{cache}/triton"})

    def run(self, benchmark: str, device: str, profile: int = 0) -> dict | None:
        """One more process (the priming one first); None once a process of this contender failed."""
        if self.error is not None:
            return None
        try:
            result = run_child(benchmark, self.name, self.env, device, profile)
        except RuntimeError as e:
            self.error = str(e)
            print(f"{self.label}: failed\n{e}", flush=True)
            return None
        if self.cold is None:
            self.cold = result
        else:
            self.rounds.append(result)
        return result

    def summary(self) -> dict:
        seconds = [r["seconds"] for r in self.rounds]
        return {"contender": self.label, "error": self.error, "cold_s": self.cold and self.cold["seconds"],
                "warm_s": seconds, "warm_median_s": statistics.median(seconds) if seconds else None,
                "process_s": [r["process_s"] for r in self.rounds], "cold_caches": self.cold and self.cold["caches"],
                "caches": [r["caches"] for r in self.rounds],
                "cold_new_cache_files": self.cold and self.cold["new_cache_files"],
                "new_cache_files": [r["new_cache_files"] for r in self.rounds],
                "static_kernels": [r["static_kernels"] for r in self.rounds],
                "triton_compiled": [r["triton_compiled"] for r in self.rounds],
                "async_compiled": self.rounds[-1]["async_compiled"] if self.rounds else [],
                "profiles": [r.get("profile") for r in self.rounds]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("benchmark", help="a model of benchmarks.run (dlrm, dlrm_bf16, ...)")
    p.add_argument("out", help="the JSON to write")
    p.add_argument("--device", default="cuda")
    p.add_argument("--contenders", default="inductor,kevolve", help="comma-separated, each NAME[+VAR=VALUE...]")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="profile each process; keep its N top functions by cumulative and by own time")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.profile < 0:
        p.error("--profile must be >= 0")
    if args.child:
        print(RESULT + json.dumps(child(args.benchmark, args.child, args.device, args.profile)), flush=True)
        return 0
    device = torch.device(args.device)
    header = {"benchmark": args.benchmark, "device": DeviceInfo.of(device).name, "torch": torch.__version__,
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(["python -m benchmarks.compile_time", *sys.argv[1:]])}
    scratch = tempfile.mkdtemp(prefix="kevolve-compile-time-")
    try:
        contenders = [Contender.of(label, scratch) for label in args.contenders.split(",")]
        for round_ in range(args.rounds + 1):  # round 0 primes the caches
            for c in contenders:
                result = c.run(args.benchmark, args.device, args.profile)
                if result is not None:
                    print(f"{c.label}: {'cold' if round_ == 0 else f'round {round_}'} {result['seconds']:.2f} s "
                          f"(process {result['process_s']:.1f} s, {len(result['async_compiled'])} async-compiled "
                          f"kernels, {result['static_kernels']} from the static bundle, new cache files "
                          f"{result['new_cache_files']})", flush=True)
            summaries = [c.summary() for c in contenders]
            Path(args.out).write_text(json.dumps({**header, "results": summaries}, indent=1) + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for s in summaries:
        if s["warm_median_s"] is not None:
            print(f"{s['contender']}: cold {s['cold_s']:.2f} s, warm median {s['warm_median_s']:.2f} s of "
                  f"{len(s['warm_s'])}")
    return 0 if all(c.error is None for c in contenders) else 1


if __name__ == "__main__":
    sys.exit(main())
