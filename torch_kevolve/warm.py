"""Warm the kernel cache for a model: find the problems its graphs pose, tune each, store the best."""
from __future__ import annotations

import dataclasses
import json
from typing import Callable

import torch

from .backend import make_dispatcher
from .backend.explain import explain
from .backend.options import KevolveOptions
from .cache import KernelRecord, UserStore
from .evolve.evaluation import Candidate, EvaluationResult
from .evolve.evaluator import Evaluator, EvaluatorConfig, EvaluatorSetupError
from .evolve.tune import tune
from .families import FAMILIES
from .key import DeviceInfo, OpKey, Problem
from .neighbours import key_index, user_index_dir


def model_problems(model: torch.nn.Module, inputs: tuple, options: dict | None = None) -> dict[str, tuple[str, Problem]]:
    """key text -> (family name, problem) for every node a kevolve family accepts, in graph order."""
    problems: dict[str, tuple[str, Problem]] = {}
    for d in explain(model, inputs, options):
        if d.problem is not None and d.key is not None:
            problems.setdefault(d.key, (d.family, d.problem))
    return problems


def _print_evaluation(candidate: Candidate, r: EvaluationResult) -> None:
    t = f"{r.t_cand_us:9.1f} us" if r.t_cand_us is not None else " " * 12
    print(f"    {candidate.implementation:26} {json.dumps(candidate.genome):64} {r.status.value:13} "
          f"{t}  fitness {r.fitness:5.2f} {r.error[:100]}")


def warm(model: torch.nn.Module, inputs: tuple, device: torch.device, options: dict | None = None,
         limit: int | None = None, retune: bool = False, say: Callable[[str], None] = print,
         verbose: bool = True, evaluator: EvaluatorConfig | None = None) -> list[KernelRecord]:
    """Tune every problem of `model` on `device` (at most `limit` candidates per implementation, judged by an
    Evaluator configured by `evaluator`) and store each best record in the user cache (and its key in the
    user's retrieval index). Unless `retune`, keys are skipped that the user cache holds, or for which the
    shipped cache holds a usable kernel."""
    opts = KevolveOptions.from_user(options)
    store = UserStore(opts.cache_dir)
    dispatcher = make_dispatcher(opts)
    families = {f.name: f for f in FAMILIES}
    config = dataclasses.replace(evaluator or EvaluatorConfig(), device=str(device))
    records = []
    with Evaluator(config) as judge:
        for key_text, (family_name, problem) in model_problems(model, inputs, options).items():
            key = OpKey.of(problem, DeviceInfo.of(device))
            if not retune and (store.get(key) is not None or dispatcher.choose(key).record is not None):
                say(f"already tuned {key_text}")
                continue
            say(f"tuning {key_text}")
            try:
                record, _ = tune(families[family_name], problem, judge, limit,
                                 progress=_print_evaluation if verbose else None)
            except EvaluatorSetupError as e:
                say(f"  cannot evaluate this key: {e}")
                continue
            if record is None:
                say("  no candidate ran correctly; nothing stored")
                continue
            stored = store.put(record)
            verdict = "kevolve wins" if record.fitness > 1 else "Inductor wins"
            say(f"  best {record.implementation} {json.dumps(record.genome)}: {record.t_cand_us:.1f} us vs "
                f"Inductor {record.t_ref_us:.1f} us, fitness {record.fitness:.2f} ({verdict}; "
                f"{'stored' if stored else 'the cache already holds a better one'})")
            records.append(record)
    if records:
        key_index(user_index_dir(opts.cache_dir), store.records())
    return records
