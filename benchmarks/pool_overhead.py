"""What an evaluation pool costs per candidate: the plain Evaluator vs a LocalPool vs a RayPool of one worker,
on the device at hand. Overhead = wall time of a candidate through the pool minus the seconds its
evaluation took inside the Evaluator (the pool's hand-off: a thread for LocalPool, an actor call for RayPool);
the first candidate of each (worker start, reference compiled and timed) is reported apart.

    python -m benchmarks.pool_overhead OUT.json [--device cuda] [--candidates 12]
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

import torch

from benchmarks.evaluator_gpu import embedding_bag_problem
from torch_kevolve.evolve.evaluation import Candidate, family_spec
from torch_kevolve.evolve.evaluator import Evaluator, EvaluatorConfig
from torch_kevolve.evolve.judging import timeable
from torch_kevolve.evolve.pool import InlinePool, LocalPool
from torch_kevolve.evolve.tune import candidates
from torch_kevolve.families import EMBEDDING_BAG
from torch_kevolve.key import DeviceInfo

DISTINCT = 4  # genomes per timeable implementation, cycled through


def plan(device: str, count: int) -> list[Candidate]:
    """`count` embedding-bag candidates, cycling through a few genomes of each implementation timeable here."""
    problem, spec = embedding_bag_problem(), family_spec(EMBEDDING_BAG)
    genomes = [(impl.name, genome) for impl in EMBEDDING_BAG.implementations if timeable(impl, torch.device(device))
               for genome in candidates(impl, problem, DISTINCT)]
    return [Candidate(spec, name, genome, problem) for name, genome in itertools.islice(itertools.cycle(genomes), count)]


def measure(pool, todo: list[Candidate], started: float) -> dict:
    """Submit the candidates one at a time; per-candidate wall, evaluation seconds and overhead (us)."""
    rows = []
    for i, candidate in enumerate(todo):
        start = time.perf_counter()
        result = pool.submit(candidate).result()
        wall = time.perf_counter() - start
        rows.append({"wall_s": wall, "evaluation_s": result.seconds, "status": result.status.value})
        if i == 0:
            first = time.monotonic() - started
    overhead = [(r["wall_s"] - r["evaluation_s"]) * 1e6 for r in rows[1:]]
    return {"first_candidate_s_incl_start": first, "statuses": sorted({r["status"] for r in rows}),
            "median_evaluation_s": statistics.median(r["evaluation_s"] for r in rows[1:]),
            "median_overhead_us": statistics.median(overhead), "mean_overhead_us": statistics.fmean(overhead),
            "max_overhead_us": max(overhead), "candidates": len(rows)}


def evaluator_mode(config: EvaluatorConfig, todo: list[Candidate]) -> dict:
    started = time.monotonic()
    with Evaluator(config) as evaluator:
        return measure(InlinePool(evaluator.evaluate, config), todo, started)


def local_mode(config: EvaluatorConfig, todo: list[Candidate]) -> dict:
    started = time.monotonic()
    with LocalPool(config, workers=1) as pool:
        return measure(pool, todo, started)


def ray_mode(config: EvaluatorConfig, todo: list[Candidate]) -> dict:
    try:
        import ray

        from torch_kevolve.evolve.ray_pool import RayPool
    except ImportError as e:
        return {"skipped": f"Ray is not installed ({e})"}
    started = time.monotonic()
    ray.init(include_dashboard=False, log_to_driver=False)
    init_s = time.monotonic() - started
    try:
        with RayPool(config, workers=1) as pool:
            return {"ray_version": ray.__version__, "ray_init_s": init_s, **measure(pool, todo, started)}
    finally:
        ray.shutdown()


MODES = {"evaluator": evaluator_mode, "local": local_mode, "ray": ray_mode}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="write the results as JSON here")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--candidates", type=int, default=12, help="per mode, the first (warm-up) included")
    p.add_argument("--modes", nargs="+", choices=sorted(MODES), default=list(MODES))
    args = p.parse_args()
    config = EvaluatorConfig(device=args.device)
    todo = plan(args.device, args.candidates)
    report = {"device": DeviceInfo.of(args.device).__dict__, "torch": torch.__version__,
              "problem": todo[0].problem.to_dict(), "modes": {}}
    for mode in args.modes:
        report["modes"][mode] = MODES[mode](config, todo)
        print(f"{mode:10} {json.dumps(report['modes'][mode])}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
