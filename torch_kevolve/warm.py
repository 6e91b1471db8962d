"""Warm the kernel cache for a model: find the problems its graphs pose, tune or evolve each, store the best."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import torch

from .backend import make_dispatcher
from .backend.explain import explain
from .backend.options import KevolveOptions
from .cache import KernelRecord, ShippedStore, UserStore
from .evolve.evaluation import Candidate, EvaluationResult
from .evolve.evaluator import Evaluator, EvaluatorConfig, EvaluatorSetupError
from .evolve.judging import timeable
from .evolve.search import Search, SearchConfig
from .evolve.search_graph import SearchGraph
from .evolve.tune import tune
from .families import FAMILIES
from .families.base import KernelFamily
from .key import DeviceInfo, OpKey, Problem
from .neighbours import cache_index, key_index, user_index_dir


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
         verbose: bool = True, evaluator: EvaluatorConfig | None = None, search: SearchConfig | None = None,
         budget_s: float | None = None) -> list[KernelRecord]:
    """Find a kernel for every problem of `model` on `device` and store each best record in the user cache
    (and its key in the user's retrieval index); return the new records.

    Without `search`, every genome (or `limit` per implementation) is evaluated; with it, each key is
    evolved (seeded by the genomes of its nearest solved keys), largest problems first, the keys sharing
    `budget_s` seconds. Candidates are judged by an Evaluator configured by `evaluator`. Unless `retune`,
    keys are skipped that the user cache holds, or for which the shipped cache holds a usable kernel.
    """
    opts = KevolveOptions.from_user(options)
    store = UserStore(opts.cache_dir)
    dispatcher = make_dispatcher(opts)
    families = {f.name: f for f in FAMILIES}
    config = dataclasses.replace(evaluator or EvaluatorConfig(), device=str(device))
    todo = []
    for key_text, (family_name, problem) in model_problems(model, inputs, options).items():
        key = OpKey.of(problem, DeviceInfo.of(device))
        if not retune and (store.get(key) is not None or dispatcher.choose(key).record is not None):
            say(f"already tuned {key_text}")
        else:
            todo.append((key_text, families[family_name], problem))
    if search is not None:
        todo.sort(key=lambda t: -t[1].bytes_moved(t[2]))
    started = time.monotonic()
    records, rows = [], []
    graph = SearchGraph(Path(opts.cache_dir) / "search.sqlite") if search is not None else None
    with Evaluator(config) as judge:
        for i, (key_text, family, problem) in enumerate(todo):
            say(f"[{i + 1}/{len(todo)}] {'evolving' if search else 'tuning'} {key_text}")
            try:
                if search is None:
                    record, _ = tune(family, problem, judge, limit, progress=_print_evaluation if verbose else None)
                    summary = "exhaustive" if limit is None else f"sampled ({limit} per implementation)"
                else:
                    share = None if budget_s is None else max(budget_s - (time.monotonic() - started), 0) / (len(todo) - i)
                    record, summary = evolve_key(family, problem, judge, graph, search, share, store, device, verbose, say)
            except EvaluatorSetupError as e:
                say(f"  cannot evaluate this key: {e}")
                rows.append((key_text, None, "setup failed"))
                continue
            if record is None:
                say("  no candidate ran correctly; nothing stored")
                rows.append((key_text, None, summary))
                continue
            store_record(record, store, say)
            records.append(record)
            rows.append((key_text, record, summary))
    if graph is not None:
        graph.close()
    if records:
        key_index(user_index_dir(opts.cache_dir), store.records())
    if rows:
        say(summary_table(rows))
    return records


def store_record(record: KernelRecord, store: UserStore, say: Callable[[str], None]) -> None:
    """Put `record` in the user cache and say what it means."""
    stored = store.put(record)
    verdict = "kevolve wins" if record.fitness > 1 else "Inductor wins"
    say(f"  best {record.implementation} {json.dumps(record.genome)}: {record.t_cand_us:.1f} us vs "
        f"Inductor {record.t_ref_us:.1f} us, fitness {record.fitness:.2f} ({verdict}; "
        f"{'stored' if stored else 'the cache already holds a better one'})")


def evolve_key(family: KernelFamily, problem: Problem, judge: Evaluator, graph: SearchGraph, config: SearchConfig,
               budget_s: float | None, store: UserStore, device: torch.device, verbose: bool,
               say: Callable[[str], None]) -> tuple[KernelRecord | None, str]:
    """Evolve one key (seeded by its nearest solved keys); the best record (None if nothing was timed) and
    how the search stopped."""
    implementations = [i for i in family.implementations if timeable(i, torch.device(device))]
    if not implementations:
        return None, "no implementation is timeable on this device"
    key = OpKey.of(problem, DeviceInfo.of(device))
    names = {i.name for i in implementations}
    seeds = [(name, genome) for name, genome in seed_genomes(key, store, ShippedStore()) if name in names]
    if seeds:
        say(f"  seeded by {len(seeds)} nearest solved keys")
    termination = dataclasses.replace(config.termination, wall_seconds=budget_s)
    search = Search(family, problem, implementations, judge.evaluate, graph, DeviceInfo.of(device),
                    dataclasses.replace(config, termination=termination), seeds=seeds)
    best = [0.0]

    def progress(node):
        best[0] = max(best[0], node.fitness)
        if verbose:
            say(f"    #{node.id:<5} {node.implementation:30} {json.dumps(node.genome):70} {node.status:13} "
                f"fitness {node.fitness:5.2f}  best {best[0]:5.2f}")

    outcome = search.run(progress)
    return search.record(outcome), f"{outcome.evaluations} evaluations, {outcome.reason}"


def seed_genomes(key: OpKey, store: UserStore, shipped: ShippedStore, k: int = 3) -> list[tuple[str, dict]]:
    """(implementation, genome) of the winners of the k nearest solved keys of the same family."""
    records = {r.key.id: r for r in shipped.records() + store.records()}
    if not records:
        return []
    index = cache_index(store, shipped)
    return [(records[n.key.id].implementation, records[n.key.id].genome)
            for n in index.nearest(key, k=k, family=key.family, exclude_self=True)
            if n.key.id in records and records[n.key.id].fitness > 1]


def summary_table(rows) -> str:
    lines = [f"\n{'key':100} {'reference us':>12} {'best us':>9} {'speedup':>8}  search"]
    for key_text, record, summary in rows:
        if record is None:
            lines.append(f"{key_text[:100]:100} {'':>12} {'':>9} {'':>8}  {summary}")
        else:
            lines.append(f"{key_text[:100]:100} {record.t_ref_us:12.1f} {record.t_cand_us:9.1f} "
                         f"{record.fitness:7.2f}x  {summary}")
    return "\n".join(lines)
