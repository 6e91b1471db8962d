"""Coverage and speed of every claimed overload on a CUDA device.

    python -m benchmarks.coverage_gpu OUT_DIR [--family NAME] [--limit N] [--no-speed] [--device-label h100]

Writes OUT_DIR/coverage-LABEL.md and .json (all OpInfo samples and random inputs, as `kevolve
coverage --device cuda`), then OUT_DIR/speed-LABEL.md and .json: per proven overload, the median
time (triton.testing.do_bench) of eager, Inductor (torch.compile) and our default Triton kernel on
one benchmark-sized problem. Works with torch 2.11+ and Triton 3.6+.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import triton.testing

from torch_kevolve.coverage import json_report, markdown_table, run_coverage
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


def time_overload(family, overload, device: str = "cuda") -> dict | None:
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
            row[f"{name}_us"] = _median_us(lambda fn=fn: fn(*args))
        except Exception as e:
            row[f"{name}_us"] = None
            row[f"{name}_error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
    return row


def speed_markdown(rows: list[dict]) -> str:
    lines = [f"# Speed per overload: {environment('cuda')}", "",
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("--family", action="append", help="only this family (repeatable)")
    p.add_argument("--limit", type=int, help="at most N OpInfo and N random samples per overload")
    p.add_argument("--no-speed", action="store_true", help="coverage only")
    p.add_argument("--device-label", default="h100", help="suffix of the output files")
    args = p.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    families = [f for f in FAMILIES if not args.family or f.name in args.family]
    command = "python -m benchmarks.coverage_gpu " + " ".join(sys.argv[1:] if argv is None else argv)

    results = run_coverage(families, "cuda", limit=args.limit, progress=lambda line: print(line, flush=True))
    (args.out_dir / f"coverage-{args.device_label}.md").write_text(markdown_table(results, "cuda", command))
    (args.out_dir / f"coverage-{args.device_label}.json").write_text(json.dumps(json_report(results, "cuda"), indent=1))
    failed = sum(r.failed for r in results)
    print(f"coverage: {sum(r.proven for r in results)} of {len(results)} overloads proven, {failed} samples failed")
    if args.no_speed:
        return 1 if failed else 0

    owner = {o: f for f in families for o in f.overloads}
    rows = []
    for r in results:
        if not r.proven:
            continue
        overload = next(o for o in owner if str(o) == r.overload)
        row = time_overload(owner[overload], overload)
        if row is not None:
            rows.append(row)
            print(f"{row['overload']}: eager {row['eager_us']}, inductor {row['inductor_us']}, triton {row['triton_us']}",
                  flush=True)
    (args.out_dir / f"speed-{args.device_label}.md").write_text(speed_markdown(rows))
    (args.out_dir / f"speed-{args.device_label}.json").write_text(
        json.dumps({"environment": environment("cuda"), "command": command, "rows": rows}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
