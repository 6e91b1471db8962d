"""Coverage and speed of every claimed overload on a CUDA device.

    python -m benchmarks.coverage_gpu OUT_DIR [--family NAME] [--limit N] [--no-speed] [--device-label h100] [--shard I/N]
    python -m benchmarks.coverage_gpu OUT_DIR --merge N     (after N shard processes ran, e.g. in parallel)
    python -m benchmarks.coverage_gpu OUT_DIR --family F --merge N --update benchmarks/results   (sharded rerun)
    python -m benchmarks.coverage_gpu OUT_DIR --family F --update benchmarks/results   (rerun some families)
    python -m benchmarks.coverage_gpu OUT_DIR --family F --speed-only --update benchmarks/results   (retime them)

Writes OUT_DIR/coverage-LABEL.md and .json (all OpInfo samples and random inputs, as `kevolve
coverage --device cuda`), then OUT_DIR/speed-LABEL.md and .json: per proven overload, the median
GPU time (replayed from a CUDA graph) of eager, Inductor (torch.compile) and our default Triton kernel on
one benchmark-sized problem. With --update DIR the reports of DIR (same device) are rewritten into OUT_DIR with
the rows of the overloads run now replaced or added. Unsharded, the coverage is written before the timing starts
and the speed report after each timed row, so a run cut short keeps what it measured. Works with torch 2.11+ and
Triton 3.6+.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from torch_kevolve.coverage import OverloadResult, json_report, markdown_table, run_coverage
from torch_kevolve.coverage.report import environment
from torch_kevolve.families import FAMILIES, POINTWISE
from torch_kevolve.families.base import Abstraction, Unsupported
from torch_kevolve.families.pointwise.inputs import example_arguments
from torch_kevolve.families.pointwise.overloads import OP_OF_OVERLOAD
from torch_kevolve.evolve.timing import graphed_us, median_us
from torch_kevolve.families.schema import call_as_compiled

from .speed_calls import benchmark_calls

BENCHMARK_SHAPE = (4096, 1024)  # 4M elements: memory-bound, launch overhead negligible


def benchmark_problem(family, overload):
    """The problem timed for `overload`: for pointwise ops a contiguous 4096 x 1024 call in the first
    example dtype; for the row, loss, scan, gather and GEMM families a benchmark-sized call (speed_calls); for the
    others their first example problem."""
    if overload in benchmark_calls():
        return family.problem(overload, benchmark_calls()[overload], {})
    if family is POINTWISE:
        for args in example_arguments(overload, OP_OF_OVERLOAD[overload], BENCHMARK_SHAPE):
            try:
                return family.problem(overload, args, {})
            except Exception:
                continue
        return None
    problems = family.example_problems(overload)
    return problems[0] if problems else None


def prepare_overload(family, overload, device: str = "cuda") -> tuple[dict, dict, list] | None:
    """(row, contenders, args) for the overload's benchmark problem: eager, Inductor and our default kernel,
    each run once (so compiles are done); a contender that fails is replaced by its error in the row."""
    problem = benchmark_problem(family, overload)
    if problem is None:
        return None
    args = family.make_inputs(problem, 0, "normal", torch.device(device))
    kernel = family.default_kernel(problem, Abstraction.TRITON)

    eager = eager_function(overload)
    row = {"overload": str(overload), "family": family.name, "problem": problem.params.__repr__()[:200],
           "dtypes": dict(problem.dtypes)}
    contenders = {"eager": eager, "inductor": torch.compile(eager, dynamic=False)}
    try:
        if kernel is None:
            raise Unsupported(f"no genome of {family.name}'s Triton kernels supports it")
        contenders["triton"] = kernel[0].build(problem, kernel[1])
    except Exception as e:
        row["triton_error"] = _error_text(e)
    for name, fn in list(contenders.items()):
        try:
            fn(*args)
            torch.cuda.synchronize()
        except Exception as e:
            del contenders[name]
            row[f"{name}_error"] = _error_text(e)
    return row, contenders, args


def eager_function(overload):
    """A function calling `overload` with positional arguments, with a code object of its own: Dynamo caches
    compiled code per code object, so one shared wrapper would hit its recompile limit across overloads."""
    namespace = {"call": call_as_compiled, "overload": overload}
    exec(compile("def eager(*args):\n    return call(overload, args)\n", f"<eager {overload}>", "exec"), namespace)
    return namespace["eager"]


def time_contenders(row: dict, contenders: dict, args: list) -> dict:
    """Fill `row` with each contender's median GPU time (`NAME_us`), by the evaluator's method
    (torch_kevolve.evolve.timing: replayed from a CUDA graph, or launch by launch where capture fails,
    noted in `NAME_timing`)."""
    device = torch.device("cuda")
    for name in ("eager", "inductor", "triton"):
        fn = contenders.get(name)
        row[f"{name}_us"] = row[f"{name}_timing"] = None
        if fn is None:
            continue
        try:
            row[f"{name}_us"], row[f"{name}_timing"] = graphed_us(lambda fn=fn: fn(*args), device), "graphed"
        except Exception:
            try:
                row[f"{name}_us"], row[f"{name}_timing"] = median_us(lambda fn=fn: fn(*args), device), "launched"
            except Exception as e:
                row[f"{name}_error"] = _error_text(e)
    return row


def _error_text(e: Exception) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]


def speed_markdown(rows: list[dict], device: str = "cuda") -> str:
    timed = [r for r in rows if r["inductor_us"] and r["triton_us"]]
    wins = sum(r["triton_us"] < r["inductor_us"] for r in timed)
    lines = [f"# Speed per overload: {environment(device)}", "",
             "Median GPU time of one call, replayed from a CUDA graph (the evaluator's method, "
             "torch_kevolve.evolve.timing;", "a * marks a contender that could not be captured, timed launch by "
             "launch instead). Ratios above 1 mean our", "default kernel is faster; the backend swaps a kernel in "
             "only where a search measured it faster on that key.", "",
             f"Our default kernel beats Inductor on {wins} of {len(timed)} overloads.", "",
             "| overload | family | dtypes | eager us | Inductor us | Triton us | vs eager | vs Inductor |",
             "|---|---|---|---:|---:|---:|---:|---:|"]

    def fmt(r, name):
        v = r[f"{name}_us"]
        return "-" if v is None else f"{v:.1f}" + ("*" if r.get(f"{name}_timing") == "launched" else "")

    def ratio(a, b):
        return "-" if a is None or b is None else f"{a / b:.2f}x"

    for r in rows:
        dtypes = ", ".join(f"{k} {v}" for k, v in r["dtypes"].items())
        lines.append(f"| `{r['overload']}` | {r['family']} | {dtypes} | {fmt(r, 'eager')} | {fmt(r, 'inductor')} | "
                     f"{fmt(r, 'triton')} | {ratio(r['eager_us'], r['triton_us'])} | {ratio(r['inductor_us'], r['triton_us'])} |")
    return "\n".join(lines) + "\n"


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N) with 0 <= I < N."""
    i, n = (int(v) for v in text.split("/"))
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"shard {text}: need 0 <= I < N")
    return i, n


@contextlib.contextmanager
def timing_slot(out_dir: Path):
    """Exclusive use of the GPU for timing among the shard processes sharing `out_dir` (compiles overlap)."""
    with open(out_dir / ".timing.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def shard_path(out_dir: Path, kind: str, label: str, shard: tuple[int, int]) -> Path:
    return out_dir / f"{kind}-{label}.shard{shard[0]}of{shard[1]}.json"


def write_reports(out_dir: Path, label: str, command: str, results: list[OverloadResult], rows: list[dict] | None,
                  device: str = "cuda") -> None:
    (out_dir / f"coverage-{label}.md").write_text(markdown_table(results, device, command))
    (out_dir / f"coverage-{label}.json").write_text(json.dumps(json_report(results, device), indent=1))
    if rows is not None:
        write_speed_reports(out_dir, label, command, rows, device)


def write_speed_reports(out_dir: Path, label: str, command: str, rows: list[dict], device: str = "cuda") -> None:
    (out_dir / f"speed-{label}.md").write_text(speed_markdown(rows, device))
    (out_dir / f"speed-{label}.json").write_text(
        json.dumps({"environment": environment(device), "command": command, "rows": rows}, indent=1))


def _in_family_order(results: list[OverloadResult], rows: list[dict]) -> tuple[list[OverloadResult], list[dict]]:
    order = {str(o): i for i, o in enumerate(o for f in FAMILIES for o in f.overloads)}
    return sorted(results, key=lambda r: order[r.overload]), sorted(rows, key=lambda r: order[r["overload"]])


def update_reports(previous: Path, out_dir: Path, label: str, command: str, results: list[OverloadResult],
                   rows: list[dict] | None, device: str = "cuda") -> list[OverloadResult]:
    """The reports in `previous` with the rows of `results` (and `rows`) replacing or joining theirs, written to
    `out_dir`; refused (ValueError) when `previous` was measured on another device."""
    old = previous_coverage(previous, label, device)
    new = {r.overload for r in results}
    merged = [OverloadResult.from_dict(d) for d in old["overloads"] if d["overload"] not in new] + list(results)
    merged, merged_rows = _in_family_order(merged, merged_speed_rows(previous_speed_rows(previous, label), rows or []))
    write_reports(out_dir, label, command, merged, merged_rows or None, device)
    return merged


def previous_speed_rows(previous: Path, label: str) -> list[dict]:
    """The speed rows of `previous`'s report (none without one)."""
    speed_file = previous / f"speed-{label}.json"
    return json.loads(speed_file.read_text())["rows"] if speed_file.exists() else []


def merged_speed_rows(old_rows: list[dict], rows: list[dict]) -> list[dict]:
    """`old_rows` with `rows` replacing or joining theirs."""
    timed = {r["overload"] for r in rows}
    return [r for r in old_rows if r["overload"] not in timed] + list(rows)


def previous_coverage(previous: Path, label: str, device: str = "cuda") -> dict:
    """The coverage report of `previous`; ValueError when it was measured on another device."""
    old = json.loads((previous / f"coverage-{label}.json").read_text())
    old_device, new_device = old["environment"].split(",")[0], environment(device).split(",")[0]
    if old_device != new_device:
        raise ValueError(f"{previous} holds {old_device} results; this is {new_device}: run the whole coverage")
    return old


def merge_shards(out_dir: Path, label: str, shards: int, command: str, device: str = "cuda",
                 previous: Path | None = None) -> list[OverloadResult]:
    """Join the shard files of one run (in overload order) into the final reports, or with `previous` into that
    directory's reports (as update_reports); returns the results. A shard that wrote no coverage file (cut short) is
    named on stdout and its overloads are left out."""
    results, rows = [], []
    for i in range(shards):
        coverage = shard_path(out_dir, "coverage", label, (i, shards))
        if not coverage.exists():
            print(f"shard {i}/{shards} wrote no coverage file: its overloads are missing from the report")
            continue
        results += [OverloadResult.from_dict(d) for d in json.loads(coverage.read_text())["overloads"]]
        speed = shard_path(out_dir, "speed", label, (i, shards))
        rows += json.loads(speed.read_text())["rows"] if speed.exists() else []
    results, rows = _in_family_order(results, rows)
    if previous is not None:
        update_reports(previous, out_dir, label, command, results, rows, device)
    else:
        write_reports(out_dir, label, command, results, rows or None, device)
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("--family", action="append", help="only this family (repeatable)")
    p.add_argument("--limit", type=int, help="at most N OpInfo and N random samples per overload")
    p.add_argument("--no-speed", action="store_true", help="coverage only")
    p.add_argument("--device-label", default="h100", help="suffix of the output files")
    p.add_argument("--shard", type=parse_shard, help="I/N: only every N-th overload from the I-th; writes shard files "
                   "(run N such processes at once: timings take turns on the GPU)")
    p.add_argument("--merge", type=int, metavar="N", help="join the N shard files in OUT_DIR into the reports")
    p.add_argument("--update", type=Path, metavar="DIR", help="rewrite DIR's reports (same device) with this run's rows")
    p.add_argument("--speed-only", action="store_true", help="with --update DIR: time the overloads DIR's coverage "
                   "proved (of --family), keeping its coverage rows")
    args = p.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.coverage_gpu " + " ".join(sys.argv[1:] if argv is None else argv)
    families = [f for f in FAMILIES if not args.family or f.name in args.family]
    if args.merge:
        results = merge_shards(args.out_dir, args.device_label, args.merge, command, previous=args.update)
        failed = sum(r.failed for r in results)
        claimed = sum(len(f.overloads) for f in families)
        print(f"coverage: {sum(r.proven for r in results)} of {claimed} overloads proven ({len(results)} measured), "
              f"{failed} samples failed")
        return 1 if failed or len(results) < claimed else 0
    if args.speed_only:
        if not args.update:
            p.error("--speed-only needs --update DIR (the coverage it times comes from there)")
        names = {str(o) for f in families for o in f.overloads}
        previous = previous_coverage(args.update, args.device_label)["overloads"]
        proven = [r for r in map(OverloadResult.from_dict, previous) if r.overload in names]
        speed_rows(families, proven, args.out_dir, None, speed_writer(args, command))
        return 0
    overloads = [o for f in families for o in f.overloads]
    only = set(overloads[args.shard[0]::args.shard[1]]) if args.shard else None
    results = run_coverage(families, "cuda", limit=args.limit, progress=lambda line: print(line, flush=True), only=only)
    failed = sum(r.failed for r in results)
    print(f"coverage: {sum(r.proven for r in results)} of {len(results)} overloads proven, {failed} samples failed")
    if args.shard:  # each shard file is written as soon as it is known: a run cut short keeps what it had
        shard_path(args.out_dir, "coverage", args.device_label, args.shard).write_text(
            json.dumps(json_report(results, "cuda"), indent=1))
        speed_file = shard_path(args.out_dir, "speed", args.device_label, args.shard)
        if not args.no_speed:
            speed_rows(families, results, args.out_dir, args.shard,
                       lambda rows: speed_file.write_text(json.dumps({"rows": rows})))
    else:  # the coverage is written before the timing starts, the speed report after each timed row
        if args.update:
            update_reports(args.update, args.out_dir, args.device_label, command, results, None)
        else:
            write_reports(args.out_dir, args.device_label, command, results, None)
        if not args.no_speed:
            speed_rows(families, results, args.out_dir, None, speed_writer(args, command))
    return 1 if failed else 0


def speed_writer(args, command: str, device: str = "cuda") -> Callable[[list[dict]], None]:
    """on_row for speed_rows: writes OUT_DIR's speed report with the rows so far, joined with (and replacing)
    the rows of --update DIR's report, read once here."""
    old_rows = previous_speed_rows(args.update, args.device_label) if args.update else []

    def write(rows: list[dict]) -> None:
        merged = _in_family_order([], merged_speed_rows(old_rows, rows))[1]
        write_speed_reports(args.out_dir, args.device_label, command, merged, device)

    return write


def speed_rows(families, results: list[OverloadResult], out_dir: Path, shard: tuple[int, int] | None,
               on_row: Callable[[list[dict]], None] = lambda rows: None) -> list[dict]:
    """Timings of every proven overload of `results` (`on_row` sees the rows so far after each). Alone, each
    overload is compiled and timed in turn (a run cut short keeps its rows). With shards, every shard process
    compiles all its contenders, waits for all shards to finish compiling, then they take turns timing (no CPU
    contention)."""
    owner = {str(o): (f, o) for f in families for o in f.overloads}
    proven = (owner[r.overload] for r in results if r.proven)
    prepared = (entry for entry in (prepare_overload(*fo) for fo in proven) if entry is not None)
    if shard is not None:
        prepared = list(prepared)
        wait_for_all_shards(out_dir, shard)
    rows = []
    for row, contenders, args in prepared:
        with timing_slot(out_dir):
            rows.append(time_contenders(row, contenders, args))
        on_row(rows)
        print(f"{row['overload']}: " + ", ".join(f"{n} {row[n + '_us']}" for n in ("eager", "inductor", "triton")),
              flush=True)
    return rows


def wait_for_all_shards(out_dir: Path, shard: tuple[int, int], poll_s: float = 1.0) -> None:
    """Mark this shard ready and block until all N shards of the run are."""
    (out_dir / f".ready{shard[0]}of{shard[1]}").touch()
    while not all((out_dir / f".ready{i}of{shard[1]}").exists() for i in range(shard[1])):
        time.sleep(poll_s)


if __name__ == "__main__":
    sys.exit(main())
