"""Coverage and speed of every claimed overload on a CUDA device.

    python -m benchmarks.coverage_gpu OUT_DIR [--family NAME] [--limit N] [--no-speed] [--device-label h100] [--shard I/N]
    python -m benchmarks.coverage_gpu OUT_DIR --merge N     (after N shard processes ran, e.g. in parallel)

Writes OUT_DIR/coverage-LABEL.md and .json (all OpInfo samples and random inputs, as `kevolve
coverage --device cuda`), then OUT_DIR/speed-LABEL.md and .json: per proven overload, the median
time (triton.testing.do_bench) of eager, Inductor (torch.compile) and our default Triton kernel on
one benchmark-sized problem. Works with torch 2.11+ and Triton 3.6+.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import sys
from pathlib import Path

import torch
import triton.testing

from torch_kevolve.coverage import OverloadResult, json_report, markdown_table, run_coverage
from torch_kevolve.coverage.report import environment
from torch_kevolve.coverage.run import default_genome, triton_implementation
from torch_kevolve.families import FAMILIES, POINTWISE
from torch_kevolve.families.pointwise.inputs import example_arguments
from torch_kevolve.families.pointwise.overloads import OP_OF_OVERLOAD
from torch_kevolve.families.schema import call_in_schema_order

BENCHMARK_SHAPE = (4096, 1024)  # 4M elements: memory-bound, launch overhead negligible


def benchmark_problem(family, overload):
    """The problem timed for `overload`: for pointwise ops a contiguous 4096 x 1024 call in the first
    example dtype; for other families their first example problem."""
    if family is POINTWISE:
        for args in example_arguments(overload, OP_OF_OVERLOAD[overload], BENCHMARK_SHAPE):
            try:
                return family.problem(overload, args, {})
            except Exception:
                continue
        return None
    problems = family.example_problems(overload)
    return problems[0] if problems else None


def _median_us(fn) -> float:
    return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median") * 1e3


def time_overload(family, overload, out_dir: Path, device: str = "cuda") -> dict | None:
    """Median times of eager, Inductor and our default kernel on the overload's benchmark problem; each is
    run once first (compiles happen outside the timing slot)."""
    problem = benchmark_problem(family, overload)
    if problem is None:
        return None
    args = family.make_inputs(problem, 0, "normal", torch.device(device))
    impl = triton_implementation(family)
    kernel = impl.build(problem, default_genome(impl, problem))

    def eager(*a):
        return call_in_schema_order(overload, a)

    row = {"overload": str(overload), "family": family.name, "problem": problem.params.__repr__()[:200],
           "dtypes": dict(problem.dtypes)}
    torch._dynamo.reset()
    inductor = torch.compile(eager, dynamic=False)
    for name, fn in (("eager", eager), ("inductor", inductor), ("triton", kernel)):
        try:
            fn(*args)
            torch.cuda.synchronize()
            with timing_slot(out_dir):
                row[f"{name}_us"] = _median_us(lambda fn=fn: fn(*args))
        except Exception as e:
            row[f"{name}_us"] = None
            row[f"{name}_error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
    return row


def speed_markdown(rows: list[dict], device: str = "cuda") -> str:
    lines = [f"# Speed per overload: {environment(device)}", "",
             "Median of triton.testing.do_bench; ratios above 1 mean our kernel is faster.", "",
             "| overload | family | dtypes | eager us | Inductor us | Triton us | vs eager | vs Inductor |",
             "|---|---|---|---:|---:|---:|---:|---:|"]

    def fmt(v):
        return "-" if v is None else f"{v:.1f}"

    def ratio(a, b):
        return "-" if a is None or b is None else f"{a / b:.2f}x"

    for r in rows:
        dtypes = ", ".join(f"{k} {v}" for k, v in r["dtypes"].items())
        lines.append(f"| `{r['overload']}` | {r['family']} | {dtypes} | {fmt(r['eager_us'])} | {fmt(r['inductor_us'])} | "
                     f"{fmt(r['triton_us'])} | {ratio(r['eager_us'], r['triton_us'])} | {ratio(r['inductor_us'], r['triton_us'])} |")
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
        (out_dir / f"speed-{label}.md").write_text(speed_markdown(rows, device))
        (out_dir / f"speed-{label}.json").write_text(
            json.dumps({"environment": environment(device), "command": command, "rows": rows}, indent=1))


def merge_shards(out_dir: Path, label: str, shards: int, command: str, device: str = "cuda") -> list[OverloadResult]:
    """Join the shard files of one run (in overload order) into the final reports; returns the results."""
    order = {str(o): i for i, o in enumerate(o for f in FAMILIES for o in f.overloads)}
    results, rows = [], []
    for i in range(shards):
        results += [OverloadResult.from_dict(d) for d in
                    json.loads(shard_path(out_dir, "coverage", label, (i, shards)).read_text())["overloads"]]
        speed = shard_path(out_dir, "speed", label, (i, shards))
        rows += json.loads(speed.read_text())["rows"] if speed.exists() else []
    results.sort(key=lambda r: order[r.overload])
    rows.sort(key=lambda r: order[r["overload"]])
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
    args = p.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.coverage_gpu " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.merge:
        results = merge_shards(args.out_dir, args.device_label, args.merge, command)
        failed = sum(r.failed for r in results)
        print(f"coverage: {sum(r.proven for r in results)} of {len(results)} overloads proven, {failed} samples failed")
        return 1 if failed else 0

    families = [f for f in FAMILIES if not args.family or f.name in args.family]
    overloads = [o for f in families for o in f.overloads]
    only = set(overloads[args.shard[0]::args.shard[1]]) if args.shard else None
    results = run_coverage(families, "cuda", limit=args.limit, progress=lambda line: print(line, flush=True), only=only)
    failed = sum(r.failed for r in results)
    print(f"coverage: {sum(r.proven for r in results)} of {len(results)} overloads proven, {failed} samples failed")
    rows = None if args.no_speed else speed_rows(families, results, args.out_dir)
    if args.shard:
        shard_path(args.out_dir, "coverage", args.device_label, args.shard).write_text(
            json.dumps(json_report(results, "cuda"), indent=1))
        if rows is not None:
            shard_path(args.out_dir, "speed", args.device_label, args.shard).write_text(json.dumps({"rows": rows}))
    else:
        write_reports(args.out_dir, args.device_label, command, results, rows)
    return 1 if failed else 0


def speed_rows(families, results: list[OverloadResult], out_dir: Path) -> list[dict]:
    """Timings of every proven overload of `results`."""
    owner = {o: f for f in families for o in f.overloads}
    rows = []
    for r in results:
        if not r.proven:
            continue
        overload = next(o for o in owner if str(o) == r.overload)
        row = time_overload(owner[overload], overload, out_dir)
        if row is not None:
            rows.append(row)
            print(f"{row['overload']}: eager {row['eager_us']}, inductor {row['inductor_us']}, triton {row['triton_us']}",
                  flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
