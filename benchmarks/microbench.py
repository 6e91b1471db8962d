"""Shared pieces of the per-op CUDA microbenchmarks (benchmarks.jagged, interaction, tbe, fm_interaction):
timing, the checked and timed row of one op, achieved bandwidth against the device's measured copy bandwidth,
the printed line and the JSON file."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import triton.testing

from benchmarks.device_time import kernel_times_us
from torch_kevolve.coverage.report import environment
from torch_kevolve.evolve.judging import as_in_a_model
from torch_kevolve.evolve.timing import copy_ceiling_gbps, graphed_or_launched_us
from torch_kevolve.families.base import Abstraction
from torch_kevolve.families.checking import as_tuple, compare, largest_error, largest_finite

TIMED = ("eager", "inductor", "triton_default", "triton_best")


def median_us(fn) -> float:
    return triton.testing.do_bench(fn, warmup=10, rep=50, return_mode="median") * 1e3


def measure(label: str, family, overload, args: tuple, eager, sweep: list[dict], extra: dict) -> dict:
    """The row of one op: eager, Inductor (eager compiled), our Triton kernel with its default genome and with
    every genome of `sweep` it supports, and each callable of `extra` (name -> fn), every one checked against
    the family's float64 reference before it is timed (its largest error relative to the reference's largest
    magnitude kept as `NAME_rel_err`, per sweep entry `rel_err`); the problem's params and dims, rates from
    bytes_moved. Eager and Inductor, the baselines, are not held to the family's tolerance (ATen sums bf16
    segments in bf16): their errors are only recorded.
    Our kernels run compiled by torch.compile, as in a model and in the evaluator (launched eagerly, the
    `wrap_triton` path alone costs hundreds of microseconds per call).
    On CUDA, eager, Inductor, the best Triton genome and the extras also get their GPU kernel time (`*_kernel_us`, and by
    kernel `*_kernels`): a wall time far above it is CPU launch overhead, not the kernel. The best genome is the fastest by the evaluator's
    method (replayed from a CUDA graph, `graphed_us` of each sweep entry), not by wall time, which small problems
    spend on the host."""
    problem = family.problem(overload, args, {})
    want = family.reference(problem, args)
    extent = family.reduced_extent(problem, args)
    triton_impl, default = family.default_kernel(problem, Abstraction.TRITON)

    errors = {}

    def checked(fn, name, baseline=False):
        got = as_tuple(fn(*args))
        if not baseline:
            compare(family, problem, got, want, extent)
        errors[name] = relative_error(family, problem, got, want)
        return median_us(lambda: fn(*args))

    torch._dynamo.reset()
    inductor = torch.compile(eager, dynamic=False)
    row = {"op": label, "overload": str(overload), "dtype": problem.dtypes[0][1], "params": dict(problem.params),
           "dims": dict(problem.dims), "bytes_moved": family.bytes_moved(problem),
           "eager_us": checked(eager, "eager", baseline=True),
           "inductor_us": checked(inductor, "inductor", baseline=True)}
    device = next(a.device for a in torch.utils._pytree.tree_leaves(args) if isinstance(a, torch.Tensor))
    timed = []  # (us, graphed us, genome, compiled kernel), each built right before it is timed
    for i, genome in enumerate([default] + [g for g in sweep if g != default
                                            and triton_impl.supports(problem, g) is None]):
        fn = as_in_a_model(triton_impl, triton_impl.build(problem, genome), device)  # resets Dynamo
        us = checked(fn, i)
        graphed = graphed_or_launched_us(lambda fn=fn: fn(*args), device) if device.type == "cuda" else us
        timed.append((us, graphed, genome, fn))
    best = min(timed, key=lambda t: t[1])
    row["triton_default_us"], row["default_genome"] = timed[0][0], timed[0][2]
    row["triton_best_us"], row["best_genome"] = best[0], best[2]
    row["sweep"] = [{"us": us, "graphed_us": graphed, "genome": g, "rel_err": errors[i]}
                    for i, (us, graphed, g, _) in enumerate(timed)]
    for name, fn in extra.items():
        row[f"{name}_us"] = checked(fn, name)
    row["triton_default_rel_err"], row["triton_best_rel_err"] = errors[0], errors[timed.index(best)]
    row.update({f"{name}_rel_err": errors[name] for name in ("eager", "inductor", *extra)})
    if device.type == "cuda":
        for name, fn in (("eager", eager), ("inductor", inductor), ("triton_best", best[3]), *extra.items()):
            row[f"{name}_kernels"] = kernel_times_us(lambda fn=fn: fn(*args))
            row[f"{name}_kernel_us"] = sum(row[f"{name}_kernels"].values())
    return add_rates(row, row["bytes_moved"], device)


def relative_error(family, problem, got: tuple, want: tuple) -> float:
    """The largest error over the family's checked outputs (checking.largest_error; device-private outputs are
    not compared) relative to the float64 reference's largest finite magnitude; 0 where the reference is all 0."""
    scale = max((largest_finite(want[i]) for i in family.checked_outputs(problem)), default=0.0)
    return largest_error(family, problem, got, want) / scale if scale else 0.0


def add_rates(row: dict, nbytes: int, device: torch.device) -> dict:
    """`row` with achieved GB/s and the fraction of `device`'s measured copy bandwidth of every timed variant, on
    wall time and (`*_kernel_fraction_of_copy`) on GPU kernel time where the row has it."""
    ceiling = copy_ceiling_gbps(device)
    row["copy_gbps"] = ceiling
    for name in TIMED:
        gbps = nbytes / (row[f"{name}_us"] * 1e3)
        row[f"{name}_gbps"], row[f"{name}_fraction_of_copy"] = gbps, gbps / ceiling
        if f"{name}_kernel_us" in row:
            row[f"{name}_kernel_fraction_of_copy"] = nbytes / (row[f"{name}_kernel_us"] * 1e3) / ceiling
    return row


def say(row: dict, width: int) -> None:
    print(f"{row['op']:>{width}} {row['dtype']:>8}: eager {row['eager_us']:8.1f} us, inductor "
          f"{row['inductor_us']:8.1f} us, triton {row['triton_default_us']:8.1f} us (best "
          f"{row['triton_best_us']:8.1f} us, {row['triton_best_fraction_of_copy']:.0%} of copy, "
          f"{json.dumps(row['best_genome'])})" + (f"; kernels: eager {row['eager_kernel_us']:.1f}, inductor "
          f"{row['inductor_kernel_us']:.1f}, triton best {row['triton_best_kernel_us']:.1f} us "
          f"({row['triton_best_kernel_fraction_of_copy']:.0%} of copy)"
          if "eager_kernel_us" in row else ""), flush=True)


def write(out: Path, module: str, rows: list[dict]) -> None:
    """The rows with the environment and the command line, as JSON at `out` (rewritten after each row, so a
    run cut short keeps what it measured)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": environment("cuda"),
                               "command": f"python -m {module} " + " ".join(sys.argv[1:]), "rows": rows}, indent=1))
