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


@dataclass(frozen=True)
class Diagnosis:
    bottleneck: str
    text: str


def diagnose(result: EvaluationResult, lineage_results: Sequence[EvaluationResult] = ()) -> Diagnosis:
    """What limits this variant, from its status, compile metadata and achieved fraction of the ceiling;
    failures repeated along its lineage are named too."""
    words = []
    if result.status is Status.COMPILE_ERROR:
        error = result.error.lower()
        words.append("compile error")
        if "shared memory" in error or "out of resource" in error:
            words.append("out of resources shared memory")
        bottleneck = "compile error"
    elif result.status in _FAILURE_WORDS:
        bottleneck = _FAILURE_WORDS[result.status]
        words.append(bottleneck)
    elif result.status is Status.UNMEASURED:
        bottleneck = "unmeasured"
        words.append("unmeasured: correct, not timeable on this device")
    else:
        spills = sum(k.get("n_spills") or 0 for k in result.kernels)
        fraction = (result.achieved_gbps / result.ceiling_gbps
                    if result.achieved_gbps and result.ceiling_gbps else None)
        if spills:
            words.append(f"register spills ({spills})")
        if fraction is not None and fraction < LOW_BANDWIDTH:
            words.append(f"memory bound low bandwidth: {fraction:.0%} of the copy ceiling, below roofline")
        elif fraction is not None and fraction >= NEAR_ROOFLINE:
            words.append(f"near roofline: {fraction:.0%} of the copy ceiling")
        if result.t_cand_us is not None and result.t_cand_us < TINY_US:
            words.append("tiny problem, launch overhead")
        bottleneck = words[0].split(":")[0].split(" (")[0] if words else "none found"
    failures = [r.status for r in lineage_results if r.status in _FAILURE_WORDS]
    if failures:
        words.append("lineage failures: " + ", ".join(_FAILURE_WORDS[s] for s in sorted(set(failures))))
    return Diagnosis(bottleneck, "; ".join(words))
