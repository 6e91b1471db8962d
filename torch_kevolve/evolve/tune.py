"""Exhaustive tuning: every genome of every timeable implementation, judged by the Evaluator.

Stand-in for the evolutionary search: same evaluator, same fitness (t_ref / t_candidate, 0 on failure).
"""
from __future__ import annotations

import collections
import hashlib
import random
from typing import Callable

import torch

from ..cache import KernelRecord
from ..families.base import Genome, Implementation, KernelFamily
from ..key import DeviceInfo, OpKey, Problem
from .evaluation import Candidate, EvaluationResult, Status, family_spec
from .evaluator import Evaluator
from .judging import timeable

Progress = Callable[[Candidate, EvaluationResult], None]


def hash_text(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def candidates(impl: Implementation, problem: Problem, limit: int | None) -> list[Genome]:
    """The genomes of `impl` supporting `problem`: all, or `limit` of them: the default genome first, then one
    genome for each algorithm it does not run (each value of a gene whose values are names, such as a search or a
    strategy, that no genome before it has), then the others; each group in an order seeded by the problem, so a
    rerun measures the same ones."""
    genomes = impl.genomes(problem)
    if limit is None or len(genomes) <= limit:
        return genomes
    default = impl.default_genome(problem)
    first = [default] if default is not None else []
    rest = [g for g in genomes if g != default]
    random.Random(hash_text(repr(problem))).shuffle(rest)
    covered = {item for g in first for item in _algorithm_genes(g)}
    algorithms = []
    for genome in rest:
        new = _algorithm_genes(genome) - covered
        if new:
            algorithms.append(genome)
            covered |= new
    others = [g for g in rest if g not in algorithms]
    return (first + algorithms + others)[:limit]


def _algorithm_genes(genome: Genome) -> set[tuple[str, str]]:
    """The (gene, value) pairs of `genome` that name an algorithm: those whose values are strings."""
    return {(name, value) for name, value in genome.items() if isinstance(value, str)}


def tune(family: KernelFamily, problem: Problem, evaluator: Evaluator, limit: int | None = None,
         progress: Progress | None = None, chosen: dict[str, list[Genome]] | None = None,
         ) -> tuple[KernelRecord | None, list[tuple[Candidate, EvaluationResult]]]:
    """Evaluate the candidates for `problem` on the evaluator's device (at most `limit` per implementation, or
    only the `chosen` genomes by implementation name); return the fittest as a record (None if none was correct
    and timed) and every evaluation."""
    device = torch.device(evaluator.config.device)
    spec = family_spec(family)
    evaluations = []
    for impl in family.implementations:
        if not timeable(impl, device) or (chosen is not None and impl.name not in chosen):
            continue
        for genome in candidates(impl, problem, limit) if chosen is None else chosen[impl.name]:
            candidate = Candidate(spec, impl.name, genome, problem)
            result = evaluator.evaluate(candidate)
            evaluations.append((candidate, result))
            if progress:
                progress(candidate, result)
    ok = [(c, r) for c, r in evaluations if r.status is Status.OK]
    if not ok:
        return None, evaluations
    best, result = max(ok, key=lambda cr: cr[1].fitness)
    statuses = collections.Counter(r.status.value for _, r in evaluations)
    record = KernelRecord.measured(
        key=OpKey.of(problem, DeviceInfo.of(device)),
        family=family,
        implementation=family.implementation(best.implementation),
        genome=best.genome,
        t_ref_us=result.t_ref_us,
        t_cand_us=result.t_cand_us,
        achieved_gbps=result.achieved_gbps,
        stats={"method": ("chosen" if chosen is not None else "exhaustive" if limit is None
                          else f"sampled, at most {limit} per implementation"),
               "evaluated": len(evaluations), "statuses": dict(statuses),
               "seconds": round(sum(r.seconds for _, r in evaluations), 3)},
    )
    return record, evaluations
