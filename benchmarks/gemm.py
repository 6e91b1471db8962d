"""GEMM microbenchmark on the DLRM's MLP products: eager and Inductor (cuBLAS, TF32 off) vs our gemm family.

    python -m benchmarks.gemm OUT.json [--batch 4096] [--products forward grad_input grad_weight] [--dtype fp32]
                                       [--layers 479x1024 1024x1024] [--no-sweep]

Per nn.Linear(in, out) of the `dlrm` benchmark (bottom 13-512-256-128, top 479-1024-1024-512-256-1) at batch B,
the three products of a training step, with the operand layouts autograd gives them: forward x [B, in] @ w.t(),
grad_input g [B, out] @ w, grad_weight g.t() @ x. Each is checked against the float64 reference, then timed
(do_bench median; GPU kernel time for eager, Inductor and our best) for the Triton default genome and a small
sweep (tiles, operand copies, split-K, the SIMT fp32 product), and for fp32 the 3xTF32 kernels on split operands:
both split first (`presplit_us`, `presplit_kernel_us`) and b only (`b_parts_us`, `b_parts_kernel_us`); TFLOP/s
from the family's flops, against the device's measured matmul rate in that dtype, and each contender's error
against float64 (`*_rel_err`).
`--layers` picks some of the layers (IN x OUT), `--no-sweep` times the default genome only. CUDA only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from benchmarks.microbench import TIMED, measure, say, write
from torch_kevolve.evolve.judging import as_in_a_model
from torch_kevolve.evolve.timing import matmul_ceiling_tflops
from torch_kevolve.families import GEMM
from torch_kevolve.families.gemm.calls import MM
from torch_kevolve.families.gemm.implementations import B_PARTS, PRESPLIT

LAYERS = ((13, 512), (512, 256), (256, 128), (479, 1024), (1024, 1024), (1024, 512), (512, 256), (256, 1))
PRODUCTS = ("forward", "grad_input", "grad_weight")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
BASE = dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=32, GROUP_M=8, num_warps=8, num_stages=3, precision="tf32x3",
            operands="k_major", SPLIT_K=1)
SWEEP = [dict(BASE, BLOCK_N=256, num_stages=4), dict(BASE, BLOCK_M=64, BLOCK_N=128, num_warps=4, num_stages=4),
         dict(BASE, operands="as_is"), dict(BASE, SPLIT_K=2), dict(BASE, SPLIT_K=8), dict(BASE, precision="ieee")]


def operands(product: str, batch: int, fan_in: int, fan_out: int, dtype: torch.dtype, device: str) -> tuple:
    """The two operands of one product of Linear(fan_in, fan_out), laid out as autograd passes them to mm."""
    g = torch.Generator(device="cpu").manual_seed(0)

    def draw(*shape):
        return (torch.randn(*shape, generator=g) / shape[-1] ** 0.5).to(device, dtype)

    weight = draw(fan_out, fan_in)
    if product == "forward":
        return draw(batch, fan_in), weight.t()
    if product == "grad_input":
        return draw(batch, fan_out), weight
    return draw(batch, fan_out).t(), draw(batch, fan_in)


def run(batch: int, products: tuple[str, ...], dtype: torch.dtype, layers=LAYERS, device: str = "cuda",
        sweep: list[dict] = SWEEP, input_layer: tuple[int, int] = LAYERS[0]):
    """Yields the checked and timed row of every product of every layer, each as soon as it is measured (the
    input layer, fed by the dense features, has no grad_input)."""
    ceiling = matmul_ceiling_tflops(torch.device(device), dtype)
    for fan_in, fan_out in layers:
        for product in products:
            if product == "grad_input" and (fan_in, fan_out) == input_layer:
                continue
            args = operands(product, batch, fan_in, fan_out, dtype, device)
            row = measure(f"{product} {fan_in}->{fan_out}", GEMM, MM, args, torch.mm, sweep, split_operands(args))
            yield add_flop_rates(row, GEMM.flops(GEMM.problem(MM, args, {})), ceiling)


def split_operands(args: tuple) -> dict:
    """The 3xTF32 kernels on split operands, both (presplit) and b only (b_parts), each with its default genome
    adapted to the problem and compiled as in a model; none for half-precision operands."""
    problem = GEMM.problem(MM, args, {})
    kernels = {}
    for name, impl in (("presplit", PRESPLIT), ("b_parts", B_PARTS)):
        genome = impl.default_genome(problem)
        if genome is not None:
            kernels[name] = as_in_a_model(impl, impl.build(problem, genome), args[0].device)
    return kernels


def add_flop_rates(row: dict, flops: int, ceiling: float) -> dict:
    """`row` with TFLOP/s of every timed variant and their fraction of `ceiling`, the device's measured matmul
    rate in the row's dtype."""
    row["flops"], row["matmul_tflops"] = flops, ceiling
    for name in TIMED:
        row[f"{name}_tflops"] = flops / (row[f"{name}_us"] * 1e6)
        row[f"{name}_fraction_of_matmul"] = row[f"{name}_tflops"] / ceiling
    return row


def _layer(text: str) -> tuple[int, int]:
    fan_in, _, fan_out = text.partition("x")
    return int(fan_in), int(fan_out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--products", nargs="+", choices=PRODUCTS, default=list(PRODUCTS))
    p.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    p.add_argument("--layers", nargs="+", type=_layer, choices=LAYERS, default=list(LAYERS), metavar="INxOUT")
    p.add_argument("--no-sweep", action="store_true")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks.gemm needs a CUDA device; skipped")
        return 0
    results = []
    for row in run(args.batch, tuple(args.products), DTYPES[args.dtype], tuple(args.layers),
                   sweep=[] if args.no_sweep else SWEEP):
        results.append(row)
        say(row, 24)
        presplit_line = (f"; 3xTF32 kernels, pre-split {row['presplit_kernel_us']:.1f} us, b parts "
                         f"{row['b_parts_kernel_us']:.1f} us" if "presplit_kernel_us" in row else "")
        print(f"{'':>24}   {row['triton_best_tflops']:.1f} TFLOP/s best, Inductor {row['inductor_tflops']:.1f}, "
              f"measured matmul {row['matmul_tflops']:.1f}{presplit_line}; errors: cuBLAS "
              f"{row['eager_rel_err']:.1e}, tf32x3 {row['triton_default_rel_err']:.1e}"
              + (f", pre-split {row['presplit_rel_err']:.1e}, b parts {row['b_parts_rel_err']:.1e}"
                 if "presplit_rel_err" in row else ""))
        write(args.out, "benchmarks.gemm", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
