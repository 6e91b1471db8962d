"""Factorization-machine interaction (WuKong's FM block) microbenchmark: eager vs Inductor (the original
x @ (xᵀ @ y) compiled) vs our fused kernels, forward and backward.

    python -m benchmarks.fm_interaction OUT.json [--batch 4096] [--rows 32] [--dim 128] [--k 16] [--per-sample]

Features [B, N, D] and a projection [N, K] shared by the batch (or [B, N, K] with --per-sample), fp32 and bf16.
Per op: eager and Inductor run the pattern's plain-ATen meaning; ours is the Triton default genome and a small
genome sweep over both algorithms, plus the reassociated (X Xᵀ) Y decomposition under Inductor; every variant
is checked against the float64 reference first, then timed (do_bench median); GB/s from the family's
bytes_moved. CUDA only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from benchmarks.microbench import measure, say, write
from torch_kevolve.families import FM_INTERACTION
from torch_kevolve.families.fm_interaction.calls import FM_INTERACTION as FORWARD
from torch_kevolve.families.fm_interaction.calls import FM_INTERACTION_BACKWARD as BACKWARD
from torch_kevolve.patterns import meaning

SWEEP = [dict(algorithm=a, BLOCK_D=d, num_warps=w, num_stages=s)
         for a, d, w, s in (("project", 32, 4, 1), ("project", 64, 4, 2), ("project", 128, 8, 2), ("project", 64, 2, 1),
                            ("gram", 32, 4, 1), ("gram", 64, 4, 2), ("gram", 128, 8, 2), ("gram", 64, 2, 1))]


def run(batch: int, rows: int, dim: int, k: int, shared: bool, dtype: torch.dtype, device: str = "cuda") -> list[dict]:
    """The checked and timed forward and backward rows at one size."""
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch, rows, dim, generator=g).to(device, dtype)
    y = (torch.randn((rows, k) if shared else (batch, rows, k), generator=g) / rows).to(device, dtype)
    grad = torch.randn(batch, rows, k, generator=g).to(device, dtype)
    gram = FM_INTERACTION.implementation("fm_interaction_decomposition")
    out = []
    for label, overload, args in (("fm_interaction", FORWARD, (x, y)), ("fm_interaction_backward", BACKWARD, (grad, x, y))):
        problem = FM_INTERACTION.problem(overload, args, {})
        torch._dynamo.reset()
        gram_inductor = torch.compile(gram.build(problem, {"method": "gram"}), dynamic=False)
        out.append(measure(label, FM_INTERACTION, overload, args, meaning(overload), SWEEP,
                           {"gram_decomposition_inductor": gram_inductor}))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--rows", type=int, default=32)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--per-sample", action="store_true", help="one projection per sample instead of a shared one")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks.fm_interaction needs a CUDA device; skipped")
        return 0
    results = []
    for dtype in (torch.float32, torch.bfloat16):
        for row in run(args.batch, args.rows, args.dim, args.k, not args.per_sample, dtype):
            results.append(row)
            say(row, 24)
            print(f"{'':>24}   (X Xᵀ) Y decomposition under Inductor {row['gram_decomposition_inductor_us']:8.1f} us")
            write(args.out, "benchmarks.fm_interaction", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
