"""Warm the kernel cache for a model: find the problems its graphs pose, tune or evolve each, store the best."""
from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import torch

from .backend import make_dispatcher
from .backend.explain import explain
from .backend.options import KevolveOptions
from .cache import Dispatcher, KernelRecord, ShippedStore, UserStore
from .evolve.evaluation import Candidate, EvaluationResult
from .evolve.evaluator import Evaluator, EvaluatorConfig, EvaluatorSetupError
from .evolve.judging import timeable
from .evolve.pool import EvaluationPool, MakeJudge, make_pool
from .evolve.search import Search, SearchConfig
from .evolve.search_graph import SearchGraph
from .evolve.tune import tune
from .families import FAMILIES
from .families.base import KernelFamily
from .key import DeviceInfo, OpKey, Problem
from .model_check import keep_what_helps
from .neighbours import cache_index, key_index, user_index_dir

log = logging.getLogger("torch_kevolve")


def model_problems(model: torch.nn.Module, inputs: tuple, options: dict | None = None) -> dict[str, tuple[str, Problem]]:
    """key text -> (family name, problem) for every node a kevolve family accepts, in graph order."""
    problems: dict[str, tuple[str, Problem]] = {}
    for d in explain(model, inputs, options):
        if d.problem is not None and d.key is not None:
            problems.setdefault(d.key, (d.family, d.problem))
    return problems


def print_evaluation(candidate: Candidate, r: EvaluationResult) -> None:
    """One line per evaluation: implementation, genome, status, time, fitness, error."""
    t = f"{r.t_cand_us:9.1f} us" if r.t_cand_us is not None else " " * 12
    print(f"    {candidate.implementation:26} {json.dumps(candidate.genome):64} {r.status.value:13} "
          f"{t}  fitness {r.fitness:5.2f} {r.error[:100]}")


def warm(model: torch.nn.Module, inputs: tuple, device: torch.device, options: dict | None = None,
         limit: int | None = None, retune: bool = False, say: Callable[[str], None] = print,
         verbose: bool = True, evaluator: EvaluatorConfig | None = None, search: SearchConfig | None = None,
         budget_s: float | None = None, workers: int | None = None, ray_address: str | None = None,
         make_judge: MakeJudge = Evaluator, check_model: bool = False) -> list[KernelRecord]:
    """Find a kernel for every problem of `model` on `device` and store each best record in the user cache
    (and its key in the user's retrieval index); return the new records.

    Without `search`, every genome (or `limit` per implementation) is evaluated; with it, each key is
    evolved (seeded by the genomes of its nearest solved keys), largest problems first, the keys sharing
    `budget_s` seconds. Candidates are judged by a pool (pool.make_pool) of `workers` judges made by
    `make_judge` (Evaluators configured by `evaluator`), on the Ray cluster at `ray_address` if given; as many
    keys are evolved at once as the pool has workers. Unless `retune`, keys are skipped that the user cache
    holds a sound record for (a usable kernel, or one Inductor beat), or for which the shipped cache holds a usable
    kernel; a stale user record (older family version or kernel source, other torch/Triton) is discarded, so
    that the key is tuned again (with `retune` too) and the new record replaces it. A retune's new record
    replaces the key's user record in any case: it was measured against today's reference (which can differ from
    the one the stored fitness was measured against) and its search began from the stored genome.
    With `check_model`, the new records are then checked in the model itself (model_check.keep_what_helps): those
    that make its step slower are discarded again.
    """
    opts = KevolveOptions.from_user(options)
    store = UserStore(opts.cache_dir)
    dispatcher = make_dispatcher(opts)
    families = {f.name: f for f in FAMILIES}
    config = dataclasses.replace(evaluator or EvaluatorConfig(), device=str(device))
    todo = []
    for key_text, (family_name, problem) in model_problems(model, inputs, options).items():
        key = OpKey.of(problem, DeviceInfo.of(device))
        holds_sound = _keep_sound_user_record(key, store, dispatcher, say)
        if not retune and (holds_sound or dispatcher.choose(key).record is not None):
            say(f"already tuned {key_text}")
        else:
            todo.append((key_text, families[family_name], problem))
    if search is not None:
        todo.sort(key=lambda t: -t[1].bytes_moved(t[2]))
    if not todo:
        return []
    with make_pool(config, workers, ray_address, say, make_judge) as pool:
        if search is None:
            rows = [tune_key(i, todo, pool, limit, store, verbose, say, replace=retune) for i in range(len(todo))]
        else:
            rows = evolve_keys(todo, pool, Path(opts.cache_dir) / "search.sqlite", search, budget_s, store,
                               device, verbose, say, replace=retune)
    records = [record for _, record, _ in rows if record is not None]
    if check_model:
        records = keep_what_helps(model, inputs, device, records, store, options, say)
    if records:
        key_index(user_index_dir(opts.cache_dir), store.records())
    say(summary_table(rows))
    return records


def _keep_sound_user_record(key: OpKey, store: UserStore, dispatcher: Dispatcher, say: Callable[[str], None]) -> bool:
    """Whether the user cache holds a sound record of `key` (usable, or slower than Inductor). A stale one is
    discarded: the dispatcher never runs it, and its old fitness must not keep a new record out."""
    record = store.get(key)
    if record is None:
        return False
    problem, level = dispatcher.check(record)
    if problem is None or level is None:
        return True
    store.discard(key)
    say(f"discarded the user record of {key.short()}: {problem}")
    return False


def tune_key(i: int, todo: list, pool: EvaluationPool, limit: int | None, store: UserStore, verbose: bool,
             say: Callable[[str], None], replace: bool = False) -> tuple[str, KernelRecord | None, str]:
    """Tune the i-th key of `todo` exhaustively (or `limit` per implementation), store its best record: its
    summary row."""
    key_text, family, problem = todo[i]
    say(f"[{i + 1}/{len(todo)}] tuning {key_text}")
    try:
        record, _ = tune(family, problem, pool, limit, progress=print_evaluation if verbose else None)
    except EvaluatorSetupError as e:
        say(f"  cannot evaluate this key: {e}")
        return key_text, None, "setup failed"
    if record is None:
        say("  no candidate ran correctly; nothing stored")
    else:
        store_record(record, store, say, replace)
    return key_text, record, "exhaustive" if limit is None else f"sampled ({limit} per implementation)"


def evolve_keys(todo: list, pool: EvaluationPool, graph_path: Path, search: SearchConfig, budget_s: float | None,
                store: UserStore, device: torch.device, verbose: bool, say: Callable[[str], None],
                replace: bool = False) -> list[tuple[str, KernelRecord | None, str]]:
    """Evolve the keys of `todo` over `pool`, as many at once as it has workers (each search keeping its
    share of them busy, with its own connection to the graph at `graph_path`), store each best record as
    its search ends; their summary rows, in order.
    A key's budget share: the time left, times the keys running, over the keys not yet started."""
    at_once = min(len(todo), pool.width)
    width = max(pool.width // at_once, 1)
    started = time.monotonic()
    lock = threading.Lock()
    begun = [0]

    def one(i: int) -> tuple[str, KernelRecord | None, str]:
        key_text, family, problem = todo[i]
        with lock:
            left = len(todo) - begun[0]
            begun[0] += 1
            share = (None if budget_s is None
                     else max(budget_s - (time.monotonic() - started), 0) * min(at_once, left) / left)
        say(f"[{i + 1}/{len(todo)}] evolving {key_text}")
        graph = SearchGraph(graph_path)
        try:
            record, summary = evolve_key(family, problem, pool, graph, search, share, store, device, verbose, say,
                                         width)
        except EvaluatorSetupError as e:
            say(f"  cannot evaluate {key_text}: {e}")
            return key_text, None, "setup failed"
        except Exception as e:  # one key's failure must not cost the others their searches
            log.exception("kevolve: the search of %s failed", key_text)
            say(f"  the search of {key_text} failed ({type(e).__name__}: {e}); nothing stored for it")
            return key_text, None, f"search failed: {type(e).__name__}"
        finally:
            graph.close()
        if record is None:
            say(f"  no candidate of {key_text} ran correctly; nothing stored")
        else:
            store_record(record, store, say, replace)
        return key_text, record, summary

    with ThreadPoolExecutor(at_once, thread_name_prefix="kevolve-key") as keys:
        return list(keys.map(one, range(len(todo))))


def store_record(record: KernelRecord, store: UserStore, say: Callable[[str], None], replace: bool = False) -> None:
    """Put `record` in the user cache (`replace`: over any record of its key, UserStore.put) and say what it
    means."""
    stored = store.put(record, replace)
    say(f"  best {record.implementation} {json.dumps(record.genome)}: {record.t_cand_us:.1f} us vs "
        f"Inductor {record.t_ref_us:.1f} us, fitness {record.fitness:.2f} ({record.verdict}; "
        f"{'stored' if stored else 'the cache already holds a better one'})")


def evolve_key(family: KernelFamily, problem: Problem, pool: EvaluationPool, graph: SearchGraph,
               config: SearchConfig, budget_s: float | None, store: UserStore, device: torch.device, verbose: bool,
               say: Callable[[str], None], width: int | None = None) -> tuple[KernelRecord | None, str]:
    """Evolve one key (seeded by its nearest solved keys) over `pool`, `width` candidates in flight (default:
    the pool's width); the best record (None if nothing was timed) and how the search stopped."""
    implementations = [i for i in family.implementations if timeable(i, torch.device(device))]
    if not implementations:
        return None, "no implementation is timeable on this device"
    key = OpKey.of(problem, DeviceInfo.of(device))
    names = {i.name for i in implementations}
    seeds = [(name, genome) for name, genome in seed_genomes(key, store, ShippedStore()) if name in names]
    if seeds:
        say(f"  seeded by {len(seeds)} nearest solved keys")
    termination = dataclasses.replace(config.termination, wall_seconds=budget_s)
    search = Search(family, problem, implementations, pool, graph, DeviceInfo.of(device),
                    dataclasses.replace(config, termination=termination), seeds=seeds, width=width)
    best = [0.0]

    def progress(node):
        best[0] = max(best[0], node.fitness)
        if verbose:
            say(f"    #{node.id:<5} {node.implementation:30} {json.dumps(node.genome):70} {node.status:13} "
                f"fitness {node.fitness:5.2f}  best {best[0]:5.2f}  ({node.result.seconds:.1f} s)")

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
