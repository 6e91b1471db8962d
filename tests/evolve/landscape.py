"""A deterministic synthetic fitness landscape over the embedding-bag backward Triton genome (no kernel runs):
a function for a search in this process, and LandscapeJudge for evaluation pools (threads or Ray actors),
which can be told to kill its own process to play a worker lost mid-search."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import time
from pathlib import Path

import torch

from torch_kevolve.evolve.evaluation import Candidate, EvaluationResult, Status
from torch_kevolve.evolve.evaluator import EvaluatorConfig
from torch_kevolve.families import EMBEDDING_BAG_BACKWARD
from torch_kevolve.key import DeviceInfo

H100 = DeviceInfo("cuda", "NVIDIA H100 80GB HBM3", "sm_90")
IMPL = EMBEDDING_BAG_BACKWARD.implementation("embedding_bag_backward_triton")
OPTIMUM = {"algorithm": "segment", "BLOCK_N": 32, "BLOCK_D": 64, "ITEMS_PER_PROGRAM": 16, "num_warps": 2,
           "num_stages": 2}
PEAK = 4.0


def backward_problem(bags: int = 32):
    grad = torch.zeros(bags, 128)
    indices, offsets = torch.zeros(3 * bags, dtype=torch.int64), torch.arange(0, 3 * bags, 3)
    args = (grad, indices, offsets, indices, offsets, torch.zeros(bags, dtype=torch.int64), 64, False, 0, False,
            None, -1)
    return EMBEDDING_BAG_BACKWARD.problem(torch.ops.aten._embedding_bag_backward.default, args, {})


def landscape_fitness(genome):
    """Separable and unimodal along each gene's sorted values, peak PEAK at OPTIMUM."""
    score = PEAK
    for name, values in IMPL.genome_space.choices:
        ordered = sorted(values, key=str) if name == "algorithm" else sorted(values)
        distance = abs(ordered.index(genome[name]) - ordered.index(OPTIMUM[name]))
        score *= 0.8 ** distance
    return score


def landscape_result(candidate: Candidate) -> EvaluationResult:
    fitness = landscape_fitness(candidate.genome)
    return EvaluationResult(Status.OK, fitness=fitness, t_ref_us=100.0, t_cand_us=100.0 / fitness,
                            achieved_gbps=500.0 * fitness, ceiling_gbps=3000.0)


def synthetic_evaluate(calls):
    def evaluate(candidate):
        calls.append(candidate)
        return landscape_result(candidate)
    return evaluate


class LandscapeJudge:
    """A pool judge scoring the landscape after `delay_s`. With `control` (a directory), every evaluation is
    appended to control/ledger, and the process SIGKILLs itself on the evaluation whose ledger line number
    control/kill_at holds, and on every evaluation of the genome control/always_kill holds (JSON)."""

    def __init__(self, config: EvaluatorConfig, delay_s: float = 0.0, control: str | None = None):
        self.config, self.delay_s = config, delay_s
        self.control = Path(control) if control else None

    def evaluate(self, candidate: Candidate) -> EvaluationResult:
        time.sleep(self.delay_s)
        if self.control is not None:
            with open(self.control / "ledger", "a+") as ledger:
                fcntl.flock(ledger, fcntl.LOCK_EX)  # concurrent judges: each sees its own line number
                ledger.write(json.dumps(candidate.genome, sort_keys=True) + "\n")
                ledger.flush()
                ledger.seek(0)
                line = len(ledger.read().splitlines())
            if self._read("kill_at") == line or self._read("always_kill") == candidate.genome:
                os.kill(os.getpid(), signal.SIGKILL)
        return landscape_result(candidate)

    def _read(self, name: str):
        path = self.control / name
        return json.loads(path.read_text()) if path.exists() else None

    def close(self) -> None:
        pass


class HashJudge(LandscapeJudge):
    """A judge for any family: a deterministic fitness in [0.5, 2) drawn from the genome's hash."""

    def evaluate(self, candidate: Candidate) -> EvaluationResult:
        draw = int(hashlib.sha256(json.dumps(candidate.genome, sort_keys=True).encode()).hexdigest()[:8], 16)
        fitness = 0.5 + 1.5 * draw / 16 ** 8
        return EvaluationResult(Status.OK, fitness=fitness, t_ref_us=100.0, t_cand_us=100.0 / fitness)
