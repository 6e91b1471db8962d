"""Diagnosis of a node's evaluation: the dominant bottleneck in words the knowledge base matches."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .evaluation import EvaluationResult, Status

LOW_BANDWIDTH = 0.5  # achieved / measured copy ceiling below this: latency- or occupancy-bound
NEAR_ROOFLINE = 0.85
TINY_US = 15.0

_FAILURE_WORDS = {
    Status.WRONG: "wrong result", Status.NAN: "nan", Status.PARTIAL_WRITE: "partial write", Status.CRASH: "crash",
    Status.TIMEOUT: "timeout", Status.ERROR: "error", Status.MUTATED_INPUT: "mutated input", Status.STALE: "stale",
    Status.SUSPECT: "suspect timing", Status.REFUSED: "refused",
}


COMPILE_ERROR = "compile error"
OUT_OF_SHARED_MEMORY = "out of resources shared memory"
UNMEASURED = "unmeasured"
SPILLS = "register spills"
LOW_BANDWIDTH_FINDING = "memory bound low bandwidth below roofline"
COMPUTE_BOUND_FINDING = "compute bound matmul below tensor core peak"
NEAR_ROOFLINE_FINDING = "near roofline"
LAUNCH_OVERHEAD = "tiny problem launch overhead"
# Every phrase a diagnosis can hold: the vocabulary a retrieval index embeds ahead of time.
FINDINGS = (COMPILE_ERROR, OUT_OF_SHARED_MEMORY, UNMEASURED, SPILLS, LOW_BANDWIDTH_FINDING, COMPUTE_BOUND_FINDING,
            NEAR_ROOFLINE_FINDING, LAUNCH_OVERHEAD, *sorted(set(_FAILURE_WORDS.values())))


@dataclass(frozen=True)
class Diagnosis:
    """`findings`: phrases of FINDINGS, the dominant first; `text`: the same with their measured details."""

    findings: tuple[str, ...]
    text: str

    @property
    def bottleneck(self) -> str:
        return self.findings[0] if self.findings else "none found"


def diagnose(result: EvaluationResult, lineage_results: Sequence[EvaluationResult] = ()) -> Diagnosis:
    """What limits this variant, from its status, compile metadata and achieved fraction of the ceiling;
    failures repeated along its lineage are named too."""
    found: list[tuple[str, str]] = []
    if result.status is Status.COMPILE_ERROR:
        found.append((COMPILE_ERROR, ""))
        error = result.error.lower()
        if "shared memory" in error or "out of resource" in error:
            found.append((OUT_OF_SHARED_MEMORY, ""))
    elif result.status in _FAILURE_WORDS:
        found.append((_FAILURE_WORDS[result.status], ""))
    elif result.status is Status.UNMEASURED:
        found.append((UNMEASURED, "correct, not timeable on this device"))
    else:
        spills = sum(k.get("n_spills") or 0 for k in result.kernels)
        if spills:
            found.append((SPILLS, str(spills)))
        found += _roofline_findings(result)
        if result.t_cand_us is not None and result.t_cand_us < TINY_US:
            found.append((LAUNCH_OVERHEAD, f"{result.t_cand_us:.1f} us"))
    failures = sorted({_FAILURE_WORDS[r.status] for r in lineage_results if r.status in _FAILURE_WORDS})
    found += [(f, "in the lineage") for f in failures if f not in {p for p, _ in found}]
    text = "; ".join(f"{phrase} ({detail})" if detail else phrase for phrase, detail in found)
    return Diagnosis(tuple(phrase for phrase, _ in found), text)


def _roofline_findings(result: EvaluationResult) -> list[tuple[str, str]]:
    """Against the nearer roof: the copy ceiling, or for a kernel with flops nearer the measured matmul ceiling
    than the copy ceiling, that one (compute-bound)."""
    memory = result.achieved_gbps / result.ceiling_gbps if result.achieved_gbps and result.ceiling_gbps else None
    compute = (result.achieved_tflops / result.ceiling_tflops
               if result.achieved_tflops and result.ceiling_tflops else None)
    if compute is not None and (memory is None or compute > memory):
        detail = f"{compute:.0%} of the matmul ceiling"
        return [(NEAR_ROOFLINE_FINDING if compute >= NEAR_ROOFLINE else COMPUTE_BOUND_FINDING, detail)]
    if memory is not None and memory < LOW_BANDWIDTH:
        return [(LOW_BANDWIDTH_FINDING, f"{memory:.0%} of the copy ceiling")]
    if memory is not None and memory >= NEAR_ROOFLINE:
        return [(NEAR_ROOFLINE_FINDING, f"{memory:.0%} of the copy ceiling")]
    return []
