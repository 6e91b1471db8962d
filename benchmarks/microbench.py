"""Shared pieces of the per-op CUDA microbenchmarks (benchmarks.jagged, interaction, tbe, fm_interaction):
timing, the checked and timed row of one op, achieved bandwidth, the printed line and the JSON file."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import triton.testing

from torch_kevolve.coverage.report import environment
from torch_kevolve.coverage.run import default_genome, triton_implementation
from torch_kevolve.families.checking import as_tuple, compare

COPY_GBPS = 3000.0  # H100 measured copy bandwidth (bytes read + written per second)
TIMED = ("eager", "inductor", "triton_default", "triton_best")


def median_us(fn) -> float:
    return triton.testing.do_bench(fn, warmup=10, rep=50, return_mode="median") * 1e3


def measure(label: str, family, overload, args: tuple, eager, sweep: list[dict], extra: dict) -> dict:
    """The row of one op: eager, Inductor (eager compiled), our Triton kernel with its default genome and with
    every genome of `sweep` it supports, and each callable of `extra` (name -> fn), every one checked against
    the family's float64 reference before it is timed; the problem's params and dims, rates from bytes_moved."""
    problem = family.problem(overload, args, {})
    want = family.reference(problem, args)
    extent = family.reduced_extent(problem, args)
    triton_impl = triton_implementation(family)

    def checked(fn):
        compare(family, problem, as_tuple(fn(*args)), want, extent)
        return median_us(lambda: fn(*args))

    torch._dynamo.reset()
    row = {"op": label, "overload": str(overload), "dtype": problem.dtypes[0][1], "params": dict(problem.params),
           "dims": dict(problem.dims), "bytes_moved": family.bytes_moved(problem),
           "eager_us": checked(eager), "inductor_us": checked(torch.compile(eager, dynamic=False))}
    default = default_genome(triton_impl, problem)
    timed = [(checked(triton_impl.build(problem, default)), default)]
    timed += [(checked(triton_impl.build(problem, g)), g) for g in sweep
              if g != default and triton_impl.supports(problem, g) is None]
    row["triton_default_us"], row["default_genome"] = timed[0]
    row["triton_best_us"], row["best_genome"] = min(timed, key=lambda t: t[0])
    row["sweep"] = [{"us": us, "genome": g} for us, g in timed]
    for name, fn in extra.items():
        row[f"{name}_us"] = checked(fn)
    return add_rates(row, row["bytes_moved"])


def add_rates(row: dict, nbytes: int) -> dict:
    """`row` with achieved GB/s and the fraction of copy bandwidth of every timed variant."""
    for name in TIMED:
        gbps = nbytes / (row[f"{name}_us"] * 1e3)
        row[f"{name}_gbps"], row[f"{name}_fraction_of_copy"] = gbps, gbps / COPY_GBPS
    return row


def say(row: dict, width: int) -> None:
    print(f"{row['op']:>{width}} {row['dtype']:>8}: eager {row['eager_us']:8.1f} us, inductor "
          f"{row['inductor_us']:8.1f} us, triton {row['triton_default_us']:8.1f} us (best "
          f"{row['triton_best_us']:8.1f} us, {row['triton_best_fraction_of_copy']:.0%} of copy, "
          f"{json.dumps(row['best_genome'])})", flush=True)


def write(out: Path, module: str, rows: list[dict]) -> None:
    """The rows with the environment and the command line, as JSON at `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": environment("cuda"), "copy_gbps": COPY_GBPS,
                               "command": f"python -m {module} " + " ".join(sys.argv[1:]), "rows": rows}, indent=1))
