"""Genome sweep of a segment reduction's kernels at the jagged benchmark's size: the one-pass and the row-tile max
gradients, or the Triton and the ends max forwards. GPU kernel time and fraction of copy bandwidth per genome.

    python -m benchmarks.segment_sweep OUT.json [--op "segment_reduce max"] [--dtype float32] [--batch 4096]
                                       [--max-length 200] [--dim 128]

Every genome of each kernel's grid (SWEPT, per op) that the kernel supports on the call, each checked against the
family's float64 reference before the profiler times it (kernels per call, the lengths' scan included, as in the
jagged benchmark's `*_kernel_us`); eager's kernel time beside them. CUDA only.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch

from benchmarks.device_time import kernel_us
from benchmarks.jagged import DTYPES, ONE_PASS, cases
from benchmarks.microbench import relative_error, write
from torch_kevolve.evolve.judging import as_in_a_model
from torch_kevolve.evolve.timing import copy_ceiling_gbps
from torch_kevolve.families import SEGMENT_REDUCE
from torch_kevolve.families.checking import as_tuple, compare
from torch_kevolve.families.schema import call_in_schema_order, schema_values

ROWS = SEGMENT_REDUCE.implementation("segment_reduce_backward_rows")
TRITON = SEGMENT_REDUCE.implementation("segment_reduce_triton")
ENDS = SEGMENT_REDUCE.implementation("segment_reduce_ends")
SWEPT = {  # the jagged benchmark's op label: (implementation, grid of its genes) of each kernel swept
    "segment_reduce_backward max": (
        # 2 warps won nowhere (session 28); only 3 stages, the default since session 32: their slots go to TAIL_FIX
        (ONE_PASS, (("RESIDENT_ROWS", (32, 64, 128)), ("BLOCK_D", (64, 128)), ("num_warps", (4, 8)),
                    ("TAIL_PASSES", (1,)), ("TAIL_FIX", ("reread_rows", "reread")), ("BLOCK_N", (16, 32)),
                    ("num_stages", (3,)), ("LENGTHS_TO_ENDS", ("block_scan", "cumsum", "block_sums")))),
        (ROWS, (("BLOCK_R", (8, 16, 32, 64, 128)), ("BLOCK_D", (32, 64, 128)), ("num_warps", (1, 2, 4, 8)),
                ("num_stages", (1,)))),
    ),
    "segment_reduce max": (
        (TRITON, (("BLOCK_N", (8, 16, 32)), ("BLOCK_D", (64, 128)), ("num_warps", (2, 4)), ("num_stages", (1,)))),
        (ENDS, (("BLOCK_N", (8, 16, 32)), ("BLOCK_D", (64, 128)), ("num_warps", (2, 4, 8)), ("num_stages", (1, 2, 3)),
                ("LENGTHS_TO_ENDS", ("block_scan", "cumsum", "block_sums")))),
    ),
}


def genomes(grid) -> list[dict]:
    """The genomes of a grid, in its order."""
    names = [name for name, _ in grid]
    return [dict(zip(names, values)) for values in itertools.product(*(choices for _, choices in grid))]


def sweep(batch: int, max_length: int, dim: int, dtype: torch.dtype, device: str, timer=kernel_us,
          op: str = "segment_reduce_backward max") -> dict:
    """The call of `op` (a key of SWEPT) on the jagged benchmark's layout; per supported genome its error against
    float64 (relative to the largest output), kernel us (`timer`) and fraction of `device`'s copy bandwidth."""
    _, family, overload, args, kwargs = next(c for c in cases(batch, max_length, dim, dtype, device) if c[0] == op)
    full = tuple(schema_values(overload, args, kwargs))
    problem = family.problem(overload, full, {})
    want = family.reference(problem, full)
    nbytes = family.bytes_moved(problem)
    copy = copy_ceiling_gbps(torch.device(device))
    rows = []
    for impl, grid in SWEPT[op]:
        for genome in genomes(grid):
            if impl.supports(problem, genome) is not None:
                continue
            fn = as_in_a_model(impl, impl.build(problem, genome), torch.device(device))
            got = as_tuple(fn(*full))
            compare(family, problem, got, want, family.reduced_extent(problem, full))
            us = timer(lambda: fn(*full))
            rows.append({"implementation": impl.name, "genome": genome, "kernel_us": us,
                         "fraction_of_copy": nbytes / (us * 1e3) / copy,
                         "rel_err": relative_error(family, problem, got, want)})
    return {"op": op, "dtype": str(dtype).removeprefix("torch."), "dims": dict(problem.dims), "bytes_moved": nbytes,
            "copy_gbps": copy, "eager_kernel_us": timer(lambda: call_in_schema_order(overload, full)), "sweep": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--op", choices=SWEPT, default="segment_reduce_backward max")
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--max-length", type=int, default=200)
    p.add_argument("--dim", type=int, default=128)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks.segment_sweep needs a CUDA device; skipped")
        return 0
    result = sweep(args.batch, args.max_length, args.dim, DTYPES[args.dtype], "cuda", op=args.op)
    write(args.out, "benchmarks.segment_sweep", [result])
    for row in sorted(result["sweep"], key=lambda r: r["kernel_us"]):
        print(f"{row['kernel_us']:8.1f} us {row['fraction_of_copy']:6.1%}  {row['implementation']} {row['genome']}",
              flush=True)
    print(f"eager {result['eager_kernel_us']:.1f} us", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
