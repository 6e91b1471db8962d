"""The Evaluator: the one way a kernel candidate is judged (by `kevolve tune` and the search).

Static checks run here, on the candidate's source; everything that runs candidate code runs in a worker
subprocess (torch_kevolve.evolve.worker) that the evaluator starts, reuses across candidates, replaces
after any failure and kills on timeout, so a hang, crash or illegal memory access costs one worker,
never the caller. A replacement starts at once and prepares the failed candidate's problem while the
caller works on its next candidate.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field

import torch

from .evaluation import Candidate, EvaluationResult, Status, load_family
from .static_checks import implementation_violations
from .worker_process import WorkerDied, WorkerProcess, WorkerTimeout

log = logging.getLogger("torch_kevolve")

HEALTHY = (Status.OK, Status.UNMEASURED)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class EvaluatorConfig:
    """How candidates are judged.

    timeout_s: one candidate, from build and compilation to its last timed run.
    setup_timeout_s: starting a worker, or preparing a problem in it (trials, compiling and timing the reference).
    trials: correctness runs, each on fresh inputs of the next distribution (normal, uniform, large, edge, ...).
    suspect_below: a candidate timed under this fraction of the roofline floor (the fastest copy of the
        problem's bytes) is SUSPECT, not fast. Correct kernels can beat that floor (L2 serves repeated reads,
        and a floor is only as fast as the copies it is measured with): the H200's best 26-table embedding-bag
        forward ran at 0.51 of a memcpy floor that counted every lookup (2026-12-03).
    gpu: the local GPU the worker runs on (it sees only that one); None: whatever the environment shows.
    """

    device: str = field(default_factory=default_device)
    timeout_s: float = 300.0
    setup_timeout_s: float = 600.0
    trials: int = 6
    suspect_below: float = 0.25
    gpu: int | None = None


class EvaluatorSetupError(RuntimeError):
    """A worker could not start, or could not prepare a problem's reference: no candidate is to blame."""


class Evaluator:
    """evaluate(candidate) -> EvaluationResult; use as a context manager (or call close) to end the worker."""

    def __init__(self, config: EvaluatorConfig | None = None):
        self.config = config or EvaluatorConfig()
        self._worker: WorkerProcess | None = None
        self._prepared: dict[tuple[str, str], dict] = {}
        self._pending: list[tuple[str, str]] = []  # problems sent to the worker for preparing, not yet answered
        self._refusals: dict[tuple[str, str], str] = {}

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker (a later evaluate starts a new one)."""
        if self._worker is not None:
            self._worker.kill()
        self._worker = None
        self._prepared = {}
        self._pending = []

    @property
    def worker_pid(self) -> int | None:
        return None if self._worker is None else self._worker.pid

    def evaluate(self, candidate: Candidate) -> EvaluationResult:
        """Judge `candidate`: refused by static checks, or run in the worker; the worker is replaced after any failure."""
        start = time.monotonic()
        refused = self._refusal(candidate)
        if refused:
            return EvaluationResult(Status.REFUSED, refused, seconds=time.monotonic() - start)
        prepared = self._prepare(candidate)
        request = {"op": "evaluate", "candidate": candidate.to_dict(), "device": self.config.device,
                   "suspect_below": self.config.suspect_below}
        try:
            reply = self._worker.request(request, self.config.timeout_s)
        except WorkerTimeout:
            result = EvaluationResult(Status.TIMEOUT, f"no result within {self.config.timeout_s:g} s; "
                                                      f"worker {self._worker.pid} killed")
        except WorkerDied as e:
            result = EvaluationResult(Status.CRASH, str(e))
        else:
            result = (EvaluationResult.from_dict(reply["result"]) if "result" in reply
                      else EvaluationResult(Status.ERROR, reply["error"]))
        if result.status not in HEALTHY:
            self.close()
            try:
                self._send_prepare(candidate)  # the replacement boots while the caller makes its next candidate
            except WorkerDied:
                self.close()  # the next evaluation starts one again, and reports why it cannot
        if result.t_ref_us is None:
            result = dataclasses.replace(result, t_ref_us=prepared["t_ref_us"], floor_us=prepared["floor_us"],
                                         ceiling_gbps=prepared["ceiling_gbps"])
        return dataclasses.replace(result, seconds=time.monotonic() - start)

    def _refusal(self, candidate: Candidate) -> str:
        """The static rules the candidate's source breaks, joined ('' if none); checked once per implementation."""
        key = (candidate.family, candidate.implementation)
        if key not in self._refusals:
            family = load_family(candidate.family)
            self._refusals[key] = "; ".join(implementation_violations(family, family.implementation(candidate.implementation)))
        return self._refusals[key]

    @staticmethod
    def _problem_key(candidate: Candidate) -> tuple[str, str]:
        return candidate.family, json.dumps(candidate.problem.to_dict(), sort_keys=True)

    def _send_prepare(self, candidate: Candidate) -> None:
        """Ask the worker (started if there is none) to prepare `candidate`'s problem; the reply is read later."""
        if self._worker is None:
            self._worker = WorkerProcess(self.config.gpu)
        self._worker.send({"op": "prepare", "family": candidate.family, "problem": candidate.problem.to_dict(),
                           "device": self.config.device, "trials": self.config.trials})
        self._pending.append(self._problem_key(candidate))

    def _prepare(self, candidate: Candidate) -> dict:
        """A running worker with `candidate`'s problem prepared; the preparation summary (t_ref_us, floor_us...)."""
        key = self._problem_key(candidate)
        try:
            if key not in self._prepared and key not in self._pending:
                self._send_prepare(candidate)
            while self._pending:
                reply = self._worker.receive(self.config.setup_timeout_s)
                if "error" in reply:
                    self.close()
                    raise EvaluatorSetupError(f"preparing {candidate.problem.op}: {reply['error']}")
                done = self._pending.pop(0)
                prepared = self._prepared[done] = reply["prepared"]
                log.info("kevolve: prepared %s in %.1f s (%d trials; the compiled reference takes %.1f us)",
                         json.loads(done[1])["op"], prepared["seconds"], prepared["trials"], prepared["t_ref_us"])
        except (WorkerTimeout, WorkerDied) as e:
            self.close()
            raise EvaluatorSetupError(f"preparing {candidate.problem.op}: {e}") from None
        return self._prepared[key]
