"""Exhaustive tuning: every genome of every runnable implementation, timed against Inductor's reference.

Stand-in for the evolutionary search: same inputs, same fitness (t_ref / t_candidate, 0 on failure).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch

from ..cache import KernelRecord
from ..families.base import Abstraction, Genome, Implementation, KernelFamily
from ..families.checking import check_kernel
from ..key import DeviceInfo, OpKey, Problem
from .timing import median_us

log = logging.getLogger("torch_kevolve")

TRIAL_SEEDS = (0, 1, 2)
TRIAL_DISTS = ("normal", "uniform", "large", "edge")


@dataclass(frozen=True)
class Measurement:
    """One candidate's outcome: status ok/wrong/error, its time and fitness (0 unless ok)."""

    implementation: str
    genome: Genome
    status: str
    t_us: float
    fitness: float
    error: str = ""


def overload_of(family: KernelFamily, problem: Problem) -> torch._ops.OpOverload:
    for overload in family.overloads:
        if str(overload) == problem.op:
            return overload
    raise KeyError(f"{family.name} has no overload {problem.op}")


def runnable(impl: Implementation, device: torch.device) -> bool:
    """Whether candidates of `impl` can be timed on `device` (Triton on CPU is interpreted: correctness only)."""
    return not (impl.abstraction is Abstraction.TRITON and device.type != "cuda")


def _compiled(impl: Implementation, fn: Callable) -> Callable:
    """Decompositions run inside Inductor's graph in real use, so they are timed compiled."""
    return torch.compile(fn, dynamic=False) if impl.abstraction is Abstraction.DECOMPOSITION else fn


def measure(family: KernelFamily, problem: Problem, impl: Implementation, genome: Genome,
            args: tuple, device: torch.device, t_ref_us: float) -> Measurement:
    """Check a candidate on fresh inputs of every distribution, then time it on `args`."""
    try:
        fn = _compiled(impl, impl.build(problem, genome))
        check_kernel(family, problem, fn, device, seeds=TRIAL_SEEDS[:1], dists=TRIAL_DISTS)
        check_kernel(family, problem, fn, device, seeds=TRIAL_SEEDS[1:], dists=("normal",))
    except AssertionError as e:
        return Measurement(impl.name, genome, "wrong", 0.0, 0.0, str(e))
    except Exception as e:
        return Measurement(impl.name, genome, "error", 0.0, 0.0, f"{type(e).__name__}: {e}")
    t_us = median_us(lambda: fn(*args), device)
    return Measurement(impl.name, genome, "ok", t_us, t_ref_us / t_us)


def tune(family: KernelFamily, problem: Problem, device: torch.device,
         progress: Callable[[Measurement], None] | None = None) -> tuple[KernelRecord | None, list[Measurement]]:
    """Measure every candidate for `problem` on `device`; return the best as a record (None if none ran)."""
    overload = overload_of(family, problem)
    args = family.make_inputs(problem, 0, "normal", device)
    reference = torch.compile(lambda *a: overload(*a), dynamic=False)
    t_ref_us = median_us(lambda: reference(*args), device)
    measurements = []
    for impl in family.implementations:
        if not runnable(impl, device):
            continue
        for genome in impl.genomes(problem):
            m = measure(family, problem, impl, genome, args, device, t_ref_us)
            measurements.append(m)
            if progress:
                progress(m)
    ok = [m for m in measurements if m.status == "ok"]
    if not ok:
        return None, measurements
    best = max(ok, key=lambda m: m.fitness)
    key = OpKey.of(problem, DeviceInfo.of(device))
    record = KernelRecord.measured(
        key=key,
        family=family,
        implementation=family.implementation(best.implementation),
        genome=best.genome,
        t_ref_us=t_ref_us,
        t_cand_us=best.t_us,
        achieved_gbps=family.bytes_moved(problem) / (best.t_us * 1e3),
        stats={"method": "exhaustive", "evaluated": len(measurements), "ok": len(ok)},
    )
    return record, measurements
