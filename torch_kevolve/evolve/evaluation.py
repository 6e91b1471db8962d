"""What the evaluator judges and what it answers: a Candidate (plain data) and its EvaluationResult (JSON).

A candidate names its family as "module:ATTRIBUTE", so a worker process can import it; the result is
structured because the search reads it as context (status, error, per-trial errors, times, roofline).
"""
from __future__ import annotations

import enum
import importlib
import sys
from dataclasses import asdict, dataclass, field

from ..families.base import Genome, KernelFamily
from ..key import Problem


class Status(str, enum.Enum):
    """Outcome of one evaluation; only OK carries a fitness."""

    OK = "ok"                          # correct on every trial and timed: fitness = t_ref / t_cand
    UNMEASURED = "unmeasured"          # correct, but not timeable here (Triton under the CPU interpreter)
    REFUSED = "refused"                # its source breaks a static rule; never run
    COMPILE_ERROR = "compile_error"    # build, Triton or Inductor compilation failed
    ERROR = "error"                    # raised while running
    CRASH = "crash"                    # killed its worker (signal, illegal memory access, CUDA error)
    TIMEOUT = "timeout"                # still running after the timeout; its worker was killed
    WRONG = "wrong"                    # values, shape, dtype or strides differ from the reference
    NAN = "nan"                        # NaN where the reference has none
    PARTIAL_WRITE = "partial_write"    # left output elements unwritten (they still hold the poison)
    STALE = "stale"                    # returned the result of an earlier call, not of these inputs
    MUTATED_INPUT = "mutated_input"    # wrote into one of its inputs
    SUSPECT = "suspect"                # timed far below the roofline floor: the timing cannot be real


@dataclass(frozen=True)
class Candidate:
    """One kernel to judge: `implementation` of `family` ("module:ATTRIBUTE") with `genome`, on `problem`."""

    family: str
    implementation: str
    genome: Genome
    problem: Problem

    def to_dict(self) -> dict:
        return {"family": self.family, "implementation": self.implementation, "genome": dict(self.genome),
                "problem": self.problem.to_dict()}

    @staticmethod
    def from_dict(d: dict) -> Candidate:
        return Candidate(d["family"], d["implementation"], dict(d["genome"]), Problem.from_dict(d["problem"]))


@dataclass(frozen=True)
class EvaluationResult:
    """A candidate's verdict. Times in microseconds; fitness = t_ref_us / t_cand_us when OK, else 0.

    `trial_errors`: max abs error per trial that ran; `floor_us`: the fastest copy of the problem's minimal
    bytes on the device (nothing real beats it by much); `ceiling_gbps`: the device's measured copy
    bandwidth; `timing`: how both times were taken ("graphed": CUDA-graph replay; "launched": call by call);
    `kernels`: compile metadata per Triton kernel (registers, spills, shared memory) where Triton exposes it;
    `seconds`: wall time of the whole evaluation.
    """

    status: Status
    error: str = ""
    fitness: float = 0.0
    trial_errors: list[float] = field(default_factory=list)
    t_ref_us: float | None = None
    t_cand_us: float | None = None
    floor_us: float | None = None
    achieved_gbps: float | None = None
    ceiling_gbps: float | None = None
    achieved_tflops: float | None = None
    ceiling_tflops: float | None = None
    timing: str | None = None
    kernels: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["status"] = self.status.value
        return d

    @staticmethod
    def from_dict(d: dict) -> EvaluationResult:
        return EvaluationResult(**{**d, "status": Status(d["status"])})


def family_spec(family: KernelFamily) -> str:
    """The "module:ATTRIBUTE" that names `family` (a module-level object of its class's module)."""
    module = type(family).__module__
    for name, value in vars(sys.modules[module]).items():
        if value is family:
            return f"{module}:{name}"
    raise ValueError(f"family {family.name!r} is not a module-level object of {module}")


def load_family(spec: str) -> KernelFamily:
    """The family named by "module:ATTRIBUTE"."""
    module, _, attribute = spec.partition(":")
    family = getattr(importlib.import_module(module), attribute)
    if not isinstance(family, KernelFamily):
        raise TypeError(f"{spec} is a {type(family).__name__}, not a KernelFamily")
    return family
