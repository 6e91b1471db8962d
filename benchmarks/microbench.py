"""Shared pieces of the per-op CUDA microbenchmarks (benchmarks.jagged, benchmarks.interaction): timing,
achieved bandwidth, the printed line and the JSON file."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import triton.testing

from torch_kevolve.coverage.report import environment

COPY_GBPS = 3000.0  # H100 measured copy bandwidth (bytes read + written per second)
TIMED = ("eager", "inductor", "triton_default", "triton_best")


def median_us(fn) -> float:
    return triton.testing.do_bench(fn, warmup=10, rep=50, return_mode="median") * 1e3


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
