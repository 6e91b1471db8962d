"""RayPool: one Ray actor per GPU (or CPU worker) of a cluster, each owning a judge (an Evaluator by default).

A candidate whose actor dies (crash of the actor itself, node loss, a kill) is retried once on a fresh
actor; if that one dies too, the candidate is scored CRASH (fitness 0). The search never loses it.
Imports Ray: import this module only where Ray is wanted (pool.make_pool does).
"""
from __future__ import annotations

import dataclasses
import logging
import os

import ray
from ray.exceptions import RayActorError

from .evaluation import Candidate, EvaluationResult, Status
from .evaluator import Evaluator, EvaluatorConfig
from .pool import MakeJudge, SlotPool

log = logging.getLogger("torch_kevolve")


@ray.remote(max_restarts=0)
class EvaluationActor:
    """A judge living in a Ray worker process; candidates and results cross as plain dicts."""

    def __init__(self, make_judge: MakeJudge, config: EvaluatorConfig):
        self._judge = make_judge(config)

    def evaluate(self, candidate: dict) -> dict:
        return self._judge.evaluate(Candidate.from_dict(candidate)).to_dict()

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        self._judge.close()


class ActorSlot:
    """A pool slot backed by an EvaluationActor, replaced whenever it dies."""

    def __init__(self, make_judge: MakeJudge, config: EvaluatorConfig, resources: dict):
        self._make_judge, self._config, self._resources = make_judge, config, resources
        self.replacements = 0
        self.actor = self._start()

    def _start(self):
        return EvaluationActor.options(**self._resources).remote(self._make_judge, self._config)

    def evaluate(self, candidate: Candidate) -> EvaluationResult:
        deaths = []
        while len(deaths) < 2:
            try:
                return EvaluationResult.from_dict(ray.get(self.actor.evaluate.remote(candidate.to_dict())))
            except RayActorError as e:
                deaths.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                ray.kill(self.actor)
                self.actor = self._start()
                self.replacements += 1
                log.warning("evaluation actor died judging %s %s (%s); replaced, %s", candidate.implementation,
                            candidate.genome, deaths[-1], "retrying it" if len(deaths) < 2 else "scoring it 0")
        return EvaluationResult(Status.CRASH, f"its evaluation actor died twice (each was replaced): {'; '.join(deaths)}")

    def close(self) -> None:
        try:
            ray.get(self.actor.close.remote())
        except RayActorError:
            pass
        ray.kill(self.actor)


class RayPool(SlotPool):
    """`workers` actors on the cluster at `address` (joined unless Ray is already initialised): one GPU each
    when `config.device` is CUDA, else one CPU each; by default as many as the cluster has GPUs (or CPUs)."""

    def __init__(self, config: EvaluatorConfig, workers: int | None = None, address: str | None = None,
                 make_judge: MakeJudge = Evaluator):
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False)
        resource = "GPU" if config.device.startswith("cuda") else "CPU"
        width = workers or max(int(ray.cluster_resources().get(resource, 0)), 1)
        resources = {"num_gpus": 1, "num_cpus": 0} if resource == "GPU" else {"num_cpus": 1}
        device = "cuda" if resource == "GPU" else config.device  # Ray shows each actor its own GPU as cuda:0
        actor_config = dataclasses.replace(config, device=device, gpu=None)
        super().__init__(config, [ActorSlot(make_judge, actor_config, resources) for _ in range(width)])

    @property
    def replacements(self) -> int:
        """How many actors died and were replaced."""
        return sum(slot.replacements for slot in self._slots)

    def actor_pids(self) -> list[int]:
        return ray.get([slot.actor.pid.remote() for slot in self._slots])
