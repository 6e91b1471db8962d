"""Warm the kernel cache for a model: find the problems its graphs pose, tune each, store the best."""
from __future__ import annotations

import json
from typing import Callable

import torch

from .backend import make_dispatcher
from .backend.explain import explain
from .backend.options import KevolveOptions
from .cache import KernelRecord, UserStore
from .evolve.tune import Measurement, tune
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


def _print_measurement(m: Measurement) -> None:
    print(f"    {m.implementation:26} {json.dumps(m.genome):64} {m.status:5} "
          f"{m.t_us:9.1f} us  fitness {m.fitness:5.2f} {m.error[:100]}")


def warm(model: torch.nn.Module, inputs: tuple, device: torch.device, options: dict | None = None,
         limit: int | None = None, retune: bool = False, say: Callable[[str], None] = print,
         verbose: bool = True) -> list[KernelRecord]:
    """Tune every problem of `model` on `device` (at most `limit` candidates per implementation)
    and store each best record in the user cache (and its key in the user's retrieval index). Unless
    `retune`, keys are skipped that the user cache holds, or for which the shipped cache holds a usable kernel."""
    opts = KevolveOptions.from_user(options)
    store = UserStore(opts.cache_dir)
    dispatcher = make_dispatcher(opts)
    families = {f.name: f for f in FAMILIES}
    records = []
    for key_text, (family_name, problem) in model_problems(model, inputs, options).items():
        key = OpKey.of(problem, DeviceInfo.of(device))
        if not retune and (store.get(key) is not None or dispatcher.choose(key).record is not None):
            say(f"already tuned {key_text}")
            continue
        say(f"tuning {key_text}")
        record, _ = tune(families[family_name], problem, device, limit, progress=_print_measurement if verbose else None)
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
