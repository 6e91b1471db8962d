"""Batched embedding bags (DLRM's tables) microbenchmark: eager ATen vs Inductor vs our batched forward and
stacked backward, on the tables of the `dlrm` benchmark.

    python -m benchmarks.tbe OUT.json [--tables 26] [--rows 100000] [--dim 128] [--batch 4096] [--pooling 20]
                                      [--dtypes float32,bfloat16] [--variants rows,sweep,runs,fill_runs]

Forward: kevolve::embedding_bags (every table's pooled rows). Backward: kevolve::embedding_bags_backward
(every table's dense weight gradient); eager and Inductor run ATen's `_embedding_bag_backward` per table with
the offset2bag and bag sizes of the forward, as autograd does. Ours: the Triton default genome, a small genome
sweep, and (backward) the rows, sweep, runs and fill-runs implementations' genomes (VARIANTS, as in a model; with
--interleaved-grads also the runs and fill-runs genomes' stack forms, STACK_VARIANTS, reading the grads' [batch,
tables, dim] tensor in place) and the stacked index_add decomposition compiled by Inductor. Each variant is checked
against the float64 reference first; times are do_bench medians; GB/s from the family's bytes_moved. fp32
and bf16 tables. CUDA only.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Iterator, Sequence

import torch

from benchmarks.microbench import measure, say, write
from torch_kevolve.evolve.judging import as_in_a_model
from torch_kevolve.families import EMBEDDING_BAGS, EMBEDDING_BAGS_BACKWARD, LAYOUT_FORMS
from torch_kevolve.families.embedding_bags.calls import BACKWARD, FORWARD
from torch_kevolve.patterns import meanings

aten = torch.ops.aten
FORWARD_SWEEP = [dict(BLOCK_N=n, BLOCK_D=d, BAGS_PER_PROGRAM=b, num_warps=w, num_stages=1)
                 for n, d, b, w in ((32, 128, 1, 1), (32, 128, 2, 2), (16, 128, 4, 4), (64, 128, 1, 2), (32, 64, 1, 1),
                                    (64, 64, 1, 2))]
BACKWARD_SWEEP = [dict(algorithm="segment", BLOCK_N=n, BLOCK_D=d, ITEMS_PER_PROGRAM=i, num_warps=w, num_stages=1)
                  for n, d, i, w in ((8, 128, 4, 1), (8, 128, 16, 2), (32, 128, 4, 4), (16, 128, 64, 4))]
RUNS_GENOMES = [{k: v for k, v in genome.items() if k != "algorithm"} for genome in BACKWARD_SWEEP]
VARIANTS = {  # backward implementation -> (short name, genomes timed as in a model)
    "embedding_bags_backward_rows": ("rows", [dict(ROWS=r, BLOCK_D=d, num_warps=w, num_stages=1) for r, d, w in
                                              ((16, 128, 4), (4, 128, 1), (64, 128, 8), (16, 64, 2))]),
    "embedding_bags_backward_sweep": ("sweep", [dict(ROWS=r, UNROLL=u, BLOCK_D=d, num_warps=w, num_stages=1)
                                                for r, u, d, w in ((16, 4, 128, 4), (32, 4, 128, 4), (8, 4, 128, 2),
                                                                   (16, 2, 128, 4), (16, 8, 128, 4), (32, 2, 128, 8),
                                                                   (64, 4, 128, 8), (16, 4, 64, 2))]),
    "embedding_bags_backward_runs": ("runs", RUNS_GENOMES),
    "embedding_bags_backward_fill_runs": ("fill_runs", RUNS_GENOMES),
}
# Short names of the stack forms' variants (the genomes of the implementation, in the form reading the interleaved
# grads' [batch, tables, dim] in place) -> the implementation
STACK_VARIANTS = {"runs_stack": "embedding_bags_backward_runs", "fill_runs_stack": "embedding_bags_backward_fill_runs"}


def variant_names() -> list[str]:
    """The result keys of VARIANTS, then of STACK_VARIANTS, in order: SHORT_gene_gene_..."""
    return [variant_name(short, genome) for short, genomes in VARIANTS.values() for genome in genomes] + [
        variant_name(short, genome) for short, name in STACK_VARIANTS.items() for genome in VARIANTS[name][1]]


def variant_name(short: str, genome: dict) -> str:
    return short + "_" + "_".join(str(v) for v in genome.values())


def bags(tables: int, rows: int, batch: int, pooling: int, device: str) -> tuple[list, list]:
    """Per table: uniform row ids, `pooling` per bag (DLRM's fixed pooling), offsets without the last."""
    g = torch.Generator(device="cpu").manual_seed(0)
    indices = [torch.randint(0, rows, (batch * pooling,), generator=g).to(device) for _ in range(tables)]
    offsets = [torch.arange(0, batch * pooling, pooling, device=device) for _ in range(tables)]
    return indices, offsets


def aten_backward(saved):
    """ATen's per-table backward with the forward's offset2bag and bag sizes (what autograd runs)."""
    def backward(grads, indices, offsets, num_weights, mode, include_last_offset):
        return [aten._embedding_bag_backward(g, i, o, o2b, size, maxi, rows, False, mode, False, None, -1)
                for g, i, o, (o2b, size, maxi), rows in zip(grads, indices, offsets, saved, num_weights)]
    return backward


def run(tables: int, rows: int, dim: int, batch: int, pooling: int, dtype: torch.dtype, device: str = "cuda",
        interleaved: bool = False, variants: Sequence[str] | None = None) -> Iterator[dict]:
    """The checked and timed forward row, then the backward row, at one size (each yielded once measured);
    `interleaved`: the pooled rows' gradients are views of one [batch, tables, dim] tensor (a DLRM interaction's
    backward hands them over so), not separate tensors, and the runs and fill-runs genomes are timed in their stack
    forms too (STACK_VARIANTS: that tensor read in place, as kevolve::embedding_bags_stack_backward does in a model);
    `variants`: the short names of the backward variants timed (default: all)."""
    g = torch.Generator(device="cpu").manual_seed(1)
    weights = [torch.randn(rows, dim, generator=g).to(device, dtype) for _ in range(tables)]
    indices, offsets = bags(tables, rows, batch, pooling, device)
    forward_args = (weights, indices, offsets, 0, False)
    saved = [aten._embedding_bag(w, i, o, False, 0, False, None, False, -1)[1:] for w, i, o in zip(*forward_args[:3])]
    if interleaved:
        stack_grad = torch.randn(batch, tables, dim, generator=g).to(device, dtype)
        grads = list(stack_grad.unbind(1))
    else:
        grads = [torch.randn(batch, dim, generator=g).to(device, dtype) for _ in range(tables)]
    backward_args = (grads, indices, offsets, [rows] * tables, 0, False)
    stacked = EMBEDDING_BAGS_BACKWARD.implementation("embedding_bags_backward_decomposition")
    backward_problem = EMBEDDING_BAGS_BACKWARD.problem(BACKWARD, backward_args, {})
    extras = {}
    sized = dataclasses.replace(backward_problem, contiguous=True)  # the variants are timed on strided grads too
    for name, (short, genomes) in VARIANTS.items():
        if variants is not None and short not in variants:
            continue
        impl = EMBEDDING_BAGS_BACKWARD.implementation(name)
        extras.update({variant_name(short, genome): as_in_a_model(impl, impl.build(backward_problem, genome),
                                                                  torch.device(device))
                       for genome in genomes if impl.supports(sized, genome) is None})
    for short, name in STACK_VARIANTS.items() if interleaved else ():
        if variants is None or short in variants:
            extras.update({variant_name(short, genome): stack_form(stack_grad, backward_problem, name, genome,
                                                                   torch.device(device))
                           for genome in VARIANTS[name][1]})
    torch._dynamo.reset()
    extras["stacked_decomposition_inductor"] = torch.compile(stacked.build(backward_problem, {"method": "stacked"}),
                                                             dynamic=False)
    yield measure("embedding_bags", EMBEDDING_BAGS, FORWARD, forward_args, meanings.embedding_bags_meaning,
                  FORWARD_SWEEP, {})
    yield measure("embedding_bags_backward", EMBEDDING_BAGS_BACKWARD, BACKWARD, backward_args,
                  aten_backward(saved), BACKWARD_SWEEP, extras)


def stack_form(stack_grad: torch.Tensor, problem, implementation: str, genome: dict, device: torch.device):
    """The stack form of `implementation`'s genome as a callable of the batched backward's arguments, whose grads
    must be the views stack_grad.unbind(1): it reads stack_grad itself (no heads), compiled as in a model."""
    impl = EMBEDDING_BAGS_BACKWARD.implementation(implementation)
    form = LAYOUT_FORMS[torch.ops.kevolve.embedding_bags_stack_backward.default, impl.name]
    stack_backward = form.build(problem, genome)

    def backward(grads, indices, offsets, num_weights, mode, include_last_offset):
        return stack_backward(stack_grad, 0, indices, offsets, num_weights, mode, include_last_offset)

    return as_in_a_model(impl, backward, device)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--tables", type=int, default=26)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--pooling", type=int, default=20)
    p.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated table dtypes")
    p.add_argument("--interleaved-grads", action="store_true",
                   help="the backward's gradients as views of one [batch, tables, dim] tensor, as a DLRM's are")
    known = [short for short, _ in VARIANTS.values()] + list(STACK_VARIANTS)
    p.add_argument("--variants", help=f"comma-separated short names of the backward variants to time (of "
                                      f"{', '.join(known)}; default: all)")
    args = p.parse_args(argv)
    variants = None if args.variants is None else args.variants.split(",")
    if variants is not None and not set(variants) <= set(known):
        p.error(f"unknown variants {sorted(set(variants) - set(known))}; known: {sorted(known)}")
    if not torch.cuda.is_available():
        print("benchmarks.tbe needs a CUDA device; skipped")
        return 0
    results = []
    for dtype in (getattr(torch, name) for name in args.dtypes.split(",")):
        for row in run(args.tables, args.rows, args.dim, args.batch, args.pooling, dtype,
                       interleaved=args.interleaved_grads, variants=variants):
            results.append(row)
            say(row, 24)
            if "stacked_decomposition_inductor_us" in row:
                print(f"{'':>24}   stacked decomposition under Inductor {row['stacked_decomposition_inductor_us']:8.1f} us")
            for name in variant_names():
                if f"{name}_us" in row:
                    print(f"{'':>24}   {name} {row[f'{name}_us']:8.1f} us")
            write(args.out, "benchmarks.tbe", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
