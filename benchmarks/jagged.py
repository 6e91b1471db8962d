"""Jagged and segment-reduce microbenchmark at a DLRM-like size: eager vs Inductor vs our Triton kernels.

    python -m benchmarks.jagged OUT.json [--batch 4096] [--max-length 200] [--dim 128] [--dtypes float32 bfloat16]

B users with lengths uniform in [0, max_length] (mean ~max_length / 2), D-wide rows, fp32 and bf16 (--dtypes).
Per op: correctness of our default genome first (float64 reference), then the median time
(triton.testing.do_bench) of eager, Inductor (torch.compile of the op) and the family's default Triton kernel with
its default genome and the best of a small genome sweep (for the max and min gradients that kernel is the one-pass
gradient; the two-pass kernel's default genome is then timed beside it as `two_pass_us`, `two_pass_kernel_us`);
achieved GB/s from the family's bytes_moved and the fraction of the device's measured copy bandwidth. CUDA only.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch

from benchmarks import microbench
from benchmarks.microbench import say, write
from torch_kevolve.evolve.judging import as_in_a_model
from torch_kevolve.families import JAGGED, SEGMENT_REDUCE
from torch_kevolve.families.base import Abstraction
from torch_kevolve.families.schema import call_in_schema_order, schema_values

aten = torch.ops.aten
ONE_PASS = SEGMENT_REDUCE.implementation("segment_reduce_backward_one_pass")
TWO_PASS = SEGMENT_REDUCE.implementation("segment_reduce_triton")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
SWEEP = [dict(BLOCK_N=n, BLOCK_D=d, num_warps=w, num_stages=s)
         for n, d, w, s in ((4, 128, 4, 1), (8, 128, 4, 1), (16, 128, 4, 1), (32, 128, 8, 1), (16, 64, 2, 1),
                            (8, 64, 2, 1), (32, 64, 4, 1), (64, 128, 8, 1), (32, 64, 4, 3), (16, 128, 4, 3))]
ONE_PASS_SWEEP = [dict(RESIDENT_ROWS=r, TAIL_PASSES=t, TAIL_FIX=f, BLOCK_N=n, BLOCK_D=d, num_warps=w, num_stages=s)
                  for r, t, f, n, d, w, s in (
                      # the best on the H100 in session 36, then the ten best of 24 (bf16 or fp32) before it
                      (64, 1, "reread_rows", 32, 64, 4, 3),
                      (64, 1, "reread", 32, 64, 4, 3), (64, 2, "reread", 32, 64, 4, 3),
                      (32, 1, "reread", 32, 64, 4, 3), (64, 1, "reread", 16, 64, 4, 3),
                      (64, 1, "reread", 32, 64, 4, 1), (32, 1, "reread", 32, 64, 4, 1),
                      (64, 1, "reread", 16, 64, 4, 1), (128, 2, "reread", 32, 64, 8, 1),
                      (128, 1, "reread", 32, 64, 8, 1), (128, 2, "reread", 32, 32, 4, 1))]


def sweep_of(implementation) -> list[dict]:
    """The genomes swept for `implementation`: ONE_PASS_SWEEP (the one-pass gradient) or SWEEP, each with every value
    of the genes those leave out (the segment kernels' LENGTHS_TO_ENDS)."""
    base = ONE_PASS_SWEEP if implementation is ONE_PASS else SWEEP
    left_out = [(name, values) for name, values in implementation.genome_space.choices if name not in base[0]]
    return [dict(genome, **dict(zip([name for name, _ in left_out], picks)))
            for genome in base for picks in itertools.product(*(values for _, values in left_out))]


def cases(batch: int, max_length: int, dim: int, dtype: torch.dtype, device: str) -> list[tuple]:
    """(label, family, overload, args, kwargs) of every op on one layout of `batch` segments."""
    g = torch.Generator(device="cpu").manual_seed(0)
    lengths = torch.randint(0, max_length + 1, (batch,), generator=g).to(device)
    offsets = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
    total = int(offsets[-1])
    values = torch.randn(total, dim, device=device).to(dtype)
    dense = torch.randn(batch, max_length, dim, device=device).to(dtype)
    rows = [
        ("jagged_to_padded", JAGGED, aten._jagged_to_padded_dense_forward.default,
         (values, [offsets], [max_length], 0.0), {}),
        ("padded_to_jagged", JAGGED, aten._padded_dense_to_jagged_forward.default, (dense, [offsets], total), {}),
    ]
    for reduce in ("sum", "max"):
        output = aten.segment_reduce(values, reduce, lengths=lengths)
        grad = torch.randn_like(output)
        rows += [
            (f"segment_reduce {reduce}", SEGMENT_REDUCE, aten.segment_reduce.default, (values, reduce),
             {"lengths": lengths}),
            (f"segment_reduce_backward {reduce}", SEGMENT_REDUCE, aten._segment_reduce_backward.default,
             (grad, output, values, reduce), {"lengths": lengths}),
        ]
    return rows


def measure(label, family, overload, args, kwargs) -> dict:
    """microbench.measure on the call's arguments in schema order (segment_reduce's lengths are keyword-only),
    sweeping the genomes of the family's default Triton kernel; where that is the one-pass gradient, the two-pass
    kernel's default genome is an extra contender."""
    full = tuple(schema_values(overload, args, kwargs))
    problem = family.problem(overload, full, {})
    kernel = family.default_kernel(problem, Abstraction.TRITON)[0]
    device = full[0].device
    extra = {"two_pass": as_in_a_model(TWO_PASS, TWO_PASS.build(problem, TWO_PASS.default_genome(problem)), device)
             } if kernel is ONE_PASS else {}
    return microbench.measure(label, family, overload, full, lambda *a: call_in_schema_order(overload, a),
                              sweep_of(kernel), extra)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--max-length", type=int, default=200)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks.jagged needs a CUDA device; skipped")
        return 0
    rows = []
    for dtype in args.dtypes:
        for case in cases(args.batch, args.max_length, args.dim, DTYPES[dtype], "cuda"):
            rows.append(measure(*case))
            say(rows[-1], 28)
            write(args.out, "benchmarks.jagged", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
