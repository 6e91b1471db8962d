"""Exhaustive tuning: every genome of every runnable implementation, timed against Inductor's reference.

Stand-in for the evolutionary search: same inputs, same fitness (t_ref / t_candidate, 0 on failure).
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Callable

import torch

from ..cache import KernelRecord
from ..families.base import Abstraction, Genome, Implementation, KernelFamily
from ..families.checking import Trial, check_trials, make_trials
from ..key import DeviceInfo, OpKey, Problem
from .static_checks import implementation_violations
from .timing import median_us

TRIAL_SEEDS = (0, 1, 2)
TRIAL_DISTS = ("normal", "uniform", "large", "edge")


@dataclass(frozen=True)
class Measurement:
    """One candidate's outcome: status ok/wrong/error/refused, its time and fitness (0 unless ok)."""

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


def hash_text(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def runnable(impl: Implementation, device: torch.device) -> bool:
    """Whether candidates of `impl` can be timed on `device` (Triton on CPU is interpreted: correctness only)."""
    return not (impl.abstraction is Abstraction.TRITON and device.type != "cuda")


def _compiled(impl: Implementation, fn: Callable, device: torch.device) -> Callable:
    """Candidates run inside Inductor's graph in real use (on CPU, Triton kernels stay opaque custom ops),
    so they are timed compiled, as the reference is."""
    if impl.abstraction is Abstraction.DECOMPOSITION or device.type == "cuda":
        torch._dynamo.reset()  # every candidate shares the builder's code object: no recompile limit
        return torch.compile(fn, dynamic=False)
    return fn


def measure(family: KernelFamily, problem: Problem, impl: Implementation, genome: Genome,
            trials: list[Trial], device: torch.device, t_ref_us: float) -> Measurement:
    """Check a candidate on every trial, then time it on the first trial's inputs."""
    try:
        fn = _compiled(impl, impl.build(problem, genome), device)
        check_trials(family, problem, fn, trials)
    except AssertionError as e:
        return Measurement(impl.name, genome, "wrong", 0.0, 0.0, str(e))
    except Exception as e:
        return Measurement(impl.name, genome, "error", 0.0, 0.0, f"{type(e).__name__}: {e}")
    args = trials[0].args
    t_us = median_us(lambda: fn(*args), device)
    return Measurement(impl.name, genome, "ok", t_us, t_ref_us / t_us)


def candidates(impl: Implementation, problem: Problem, limit: int | None) -> list[Genome]:
    """The genomes of `impl` supporting `problem`: all, or `limit` of them (default genome first, the rest
    a sample seeded by the problem, so a rerun measures the same ones)."""
    genomes = impl.genomes(problem)
    if limit is None or len(genomes) <= limit:
        return genomes
    default = impl.genome_space.default()
    first = [default] if default in genomes else []
    rest = [g for g in genomes if g != default]
    rng = random.Random(hash_text(repr(problem)))
    return first + rng.sample(rest, limit - len(first))


def tune(family: KernelFamily, problem: Problem, device: torch.device, limit: int | None = None,
         progress: Callable[[Measurement], None] | None = None) -> tuple[KernelRecord | None, list[Measurement]]:
    """Measure the candidates for `problem` on `device` (at most `limit` per implementation); return the
    best as a record (None if none ran correctly) and every measurement."""
    overload = overload_of(family, problem)
    trials = make_trials(family, problem, device, TRIAL_SEEDS[:1], TRIAL_DISTS)
    trials += make_trials(family, problem, device, TRIAL_SEEDS[1:], ("normal",))
    args = trials[0].args
    reference = torch.compile(lambda *a: overload(*a), dynamic=False)
    t_ref_us = median_us(lambda: reference(*args), device)
    measurements = []
    for impl in family.implementations:
        if not runnable(impl, device):
            continue
        refused = "; ".join(implementation_violations(family, impl))  # static rules: once per source
        for genome in candidates(impl, problem, limit):
            m = (Measurement(impl.name, genome, "refused", 0.0, 0.0, refused) if refused
                 else measure(family, problem, impl, genome, trials, device, t_ref_us))
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
        stats={"method": "exhaustive" if limit is None else f"sampled, at most {limit} per implementation",
               "evaluated": len(measurements), "ok": len(ok)},
    )
    return record, measurements
