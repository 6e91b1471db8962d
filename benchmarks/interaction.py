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
import sys
from pathlib import Path

import torch

from benchmarks import microbench
from benchmarks.microbench import say, write
from torch_kevolve.families import INTERACTION
from torch_kevolve.families.interaction.calls import PAIRWISE_DOTS, PAIRWISE_DOTS_BACKWARD
from torch_kevolve.patterns import meaning

SWEEP = [dict(algorithm=a, fp32_precision=r, PROGRAMS_PER_SM=s, BLOCK_P=p, BLOCK_D=d, num_warps=w, num_stages=1)
         for a, r, s, p, d, w in (("gram", "tf32x3", 4, 32, 64, 4), ("gram", "tf32x3", 8, 64, 128, 4),
                                  ("gram", "tf32x3", 16, 128, 128, 4), ("gram", "tf32x3", 2, 128, 128, 8),
                                  ("gram", "tf32x3", 8, 32, 32, 2), ("gram", "ieee", 4, 64, 128, 4),
                                  ("gram", "ieee", 8, 128, 64, 8), ("gram", "ieee", 16, 32, 32, 2),
                                  ("gram", "tf32x3", 16, 64, 32, 2), ("gram", "tf32x3", 8, 512, 32, 2),
                                  ("gram", "tf32_split", 8, 512, 128, 2), ("gram", "tf32_split", 16, 64, 32, 2),
                                  ("gram", "tf32_split", 16, 512, 64, 4),
                                  ("gather", "tf32x3", 4, 16, 64, 2), ("gather", "tf32x3", 4, 32, 128, 4),
                                  ("gather", "tf32x3", 4, 64, 128, 8))]  # "ieee", "tf32_split": fp32 only (refused for
# bf16); tf32_split: the forward only


def cases(batch: int, rows: int, dim: int, dtype: torch.dtype, device: str) -> list[tuple]:
    """(label, overload, args) of the forward and the backward at one size."""
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch, rows, dim, generator=g).to(device, dtype)
    first, second = torch.tril_indices(rows, rows, offset=-1, device=device)
    grad = torch.randn(batch, first.numel(), generator=g).to(device, dtype)
    return [("pairwise_dots", PAIRWISE_DOTS, (x, first, second)),
            ("pairwise_dots_backward", PAIRWISE_DOTS_BACKWARD, (grad, x, first, second))]


def measure(label, overload, args) -> dict:
    """microbench.measure with the pattern's plain-ATen meaning (bmm, then gather) as the eager contender."""
    return microbench.measure(label, INTERACTION, overload, args, meaning(overload), SWEEP, {})


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
            rows.append(measure(*case))
            say(rows[-1], 24)
            write(args.out, "benchmarks.interaction", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
