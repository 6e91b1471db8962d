"""Evaluation pools: several candidates judged at once, results consumed as they complete.

    pool.submit(candidate) -> Future[EvaluationResult]     pool.width: how many run at once
    pool.evaluate(candidate) -> EvaluationResult           (submit, then wait)
    pool.close()                                           (or use the pool as a context manager)

LocalPool runs `width` Evaluators (each its own worker subprocess, one per local GPU or N on the CPU);
RayPool (ray_pool.py, Ray imported only there) runs one Ray actor per GPU or CPU worker of a cluster.
InlinePool evaluates in the caller, so a plain function can stand where a pool is expected.
"""
from __future__ import annotations

import dataclasses
import queue
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Protocol, Sequence

import torch

from .evaluation import Candidate, EvaluationResult
from .evaluator import Evaluator, EvaluatorConfig


class Judge(Protocol):
    """What a pool's slot holds: an Evaluator, or anything that judges a candidate the same way."""

    def evaluate(self, candidate: Candidate) -> EvaluationResult: ...

    def close(self) -> None: ...


MakeJudge = Callable[[EvaluatorConfig], Judge]


class EvaluationPool:
    """The interface the search uses; `config` is the evaluators' configuration (device, timeouts)."""

    config: EvaluatorConfig
    width: int

    def submit(self, candidate: Candidate) -> Future:
        raise NotImplementedError

    def evaluate(self, candidate: Candidate) -> EvaluationResult:
        return self.submit(candidate).result()

    def close(self) -> None:
        """End the workers; idempotent."""

    def __enter__(self) -> EvaluationPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InlinePool(EvaluationPool):
    """`evaluate` called in the caller's thread at submit: width 1, each future done when returned."""

    width = 1

    def __init__(self, evaluate: Callable[[Candidate], EvaluationResult], config: EvaluatorConfig | None = None):
        self._evaluate = evaluate
        self.config = config or EvaluatorConfig()

    def submit(self, candidate: Candidate) -> Future:
        future = Future()
        try:
            future.set_result(self._evaluate(candidate))
        except Exception as e:
            future.set_exception(e)
        return future


class SlotPool(EvaluationPool):
    """Candidates queue for `slots` (judges), each driven by a thread of its own: as many run at once as there
    are slots, and each future completes when its slot answers."""

    def __init__(self, config: EvaluatorConfig, slots: Sequence[Judge]):
        if not slots:
            raise ValueError("an evaluation pool needs at least one worker")
        self.config = config
        self.width = len(slots)
        self._slots = list(slots)
        self._free: queue.SimpleQueue[Judge] = queue.SimpleQueue()
        for slot in self._slots:
            self._free.put(slot)
        self._threads = ThreadPoolExecutor(self.width, thread_name_prefix="kevolve-pool")
        self._closed = False

    def submit(self, candidate: Candidate) -> Future:
        return self._threads.submit(self._run, candidate)

    def _run(self, candidate: Candidate) -> EvaluationResult:
        slot = self._free.get()
        try:
            return slot.evaluate(candidate)
        finally:
            self._free.put(slot)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._threads.shutdown(wait=True, cancel_futures=True)
        for slot in self._slots:
            slot.close()


def local_gpus(config: EvaluatorConfig) -> int:
    """How many local GPUs `config.device` can spread over (0 on the CPU or when the device names one GPU)."""
    return torch.cuda.device_count() if config.device == "cuda" else 0


class LocalPool(SlotPool):
    """`workers` judges made by `make_judge` (Evaluators by default) in this machine: on "cuda", one per local
    GPU unless `workers` says otherwise (slot i pinned to GPU i modulo their number); on the CPU, `workers` or 1."""

    def __init__(self, config: EvaluatorConfig, workers: int | None = None, make_judge: MakeJudge = Evaluator):
        gpus = local_gpus(config)
        width = workers or max(gpus, 1)
        configs = [dataclasses.replace(config, gpu=i % gpus) if gpus else config for i in range(width)]
        super().__init__(config, [make_judge(c) for c in configs])


def make_pool(config: EvaluatorConfig, workers: int | None = None, ray_address: str | None = None,
              say: Callable[[str], None] = print, make_judge: MakeJudge = Evaluator) -> EvaluationPool:
    """A RayPool on the cluster at `ray_address`, or a LocalPool when no address is given or Ray is missing."""
    if ray_address:
        try:
            from .ray_pool import RayPool
        except ImportError:
            say("Ray is not installed (pip install 'torch_kevolve[ray]'): evaluating on a local pool instead")
        else:
            pool = RayPool(config, workers, ray_address, make_judge)
            say(f"evaluating on {pool.width} Ray actors of the cluster at {ray_address}")
            return pool
    pool = LocalPool(config, workers, make_judge)
    if pool.width > 1:
        say(f"evaluating on a local pool of {pool.width} workers")
    return pool
