"""DLRM dot-interaction microbenchmark: eager vs Inductor (the original bmm + gather pattern compiled) vs our
interaction kernels, forward and backward.

    python -m benchmarks.interaction OUT.json [--batch 4096] [--rows 27] [--dim 128]

Features [B, F, D] with DLRM's pairs (strict lower triangle, F(F-1)/2 of them), fp32 and bf16. Per op:
correctness of our default genome first (float64 reference), then the median time (triton.testing.do_bench)
of eager, Inductor and our kernel with the default genome and the best of a small genome sweep, each
checked; achieved GB/s from the family's bytes_moved. CUDA only.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from benchmarks.jagged import COPY_GBPS, _median_us
from torch_kevolve.coverage.report import environment
from torch_kevolve.coverage.run import default_genome
from torch_kevolve.families import INTERACTION
from torch_kevolve.families.checking import compare
from torch_kevolve.families.interaction.calls import PAIRWISE_DOTS, PAIRWISE_DOTS_BACKWARD
from torch_kevolve.patterns import meaning

TRITON = INTERACTION.implementation("interaction_triton")
SWEEP = [dict(algorithm=a, BLOCK_P=p, BLOCK_D=d, num_warps=w, num_stages=1)
         for a, p, d, w in (("gram", 32, 64, 4), ("gram", 64, 64, 4), ("gram", 32, 128, 8), ("gram", 16, 32, 4),
                            ("gram", 64, 128, 8), ("gram", 128, 32, 8), ("gather", 16, 128, 4), ("gather", 32, 128, 4),
                            ("gather", 64, 128, 8), ("gather", 16, 64, 2))]


def cases(batch: int, rows: int, dim: int, dtype: torch.dtype, device: str) -> list[tuple]:
    """(label, overload, args) of the forward and the backward at one size."""
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch, rows, dim, generator=g).to(device, dtype)
    first, second = torch.tril_indices(rows, rows, offset=-1, device=device)
    grad = torch.randn(batch, first.numel(), generator=g).to(device, dtype)
    return [("pairwise_dots", PAIRWISE_DOTS, (x, first, second)),
            ("pairwise_dots_backward", PAIRWISE_DOTS_BACKWARD, (grad, x, first, second))]


def measure(label, overload, args) -> dict:
    problem = INTERACTION.problem(overload, args, {})
    want = INTERACTION.reference(problem, args)
    extent = INTERACTION.reduced_extent(problem, args)

    def checked(genome):
        fn = TRITON.build(problem, genome)
        return fn, compare(INTERACTION, problem, (fn(*args),), want, extent)

    default = default_genome(TRITON, problem)
    kernel, error = checked(default)
    pattern = meaning(overload)
    torch._dynamo.reset()
    inductor = torch.compile(pattern, dynamic=False)
    compare(INTERACTION, problem, (inductor(*args),), want, extent)
    nbytes = INTERACTION.bytes_moved(problem)
    row = {"op": label, "overload": str(overload), "dtype": str(args[-3].dtype).removeprefix("torch."),
           "dims": dict(problem.dims), "bytes_moved": nbytes, "max_abs_error": error,
           "eager_us": _median_us(lambda: pattern(*args)), "inductor_us": _median_us(lambda: inductor(*args)),
           "triton_default_us": _median_us(lambda: kernel(*args)), "default_genome": default}
    sweep = [(row["triton_default_us"], default)]
    for genome in SWEEP:
        if genome != default and TRITON.supports(problem, genome) is None:
            fn, _ = checked(genome)
            sweep.append((_median_us(lambda fn=fn: fn(*args)), genome))
    row["triton_best_us"], row["best_genome"] = min(sweep, key=lambda s: s[0])
    row["sweep"] = [{"us": us, "genome": genome} for us, genome in sweep]
    for name in ("eager", "inductor", "triton_default", "triton_best"):
        gbps = nbytes / (row[f"{name}_us"] * 1e3)
        row[f"{name}_gbps"], row[f"{name}_fraction_of_copy"] = gbps, gbps / COPY_GBPS
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--rows", type=int, default=27)
    p.add_argument("--dim", type=int, default=128)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks.interaction needs a CUDA device; skipped")
        return 0
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for case in cases(args.batch, args.rows, args.dim, dtype, "cuda"):
            row = measure(*case)
            rows.append(row)
            print(f"{row['op']:>24} {row['dtype']:>8}: eager {row['eager_us']:8.1f} us, inductor "
                  f"{row['inductor_us']:8.1f} us, triton {row['triton_default_us']:8.1f} us (best "
                  f"{row['triton_best_us']:8.1f} us {json.dumps(row['best_genome'])})", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": environment("cuda"), "copy_gbps": COPY_GBPS,
                                    "command": "python -m benchmarks.interaction " + " ".join(sys.argv[1:]),
                                    "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
