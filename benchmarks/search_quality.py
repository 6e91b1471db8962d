"""Search quality on a GPU: the three policies against a sampled baseline, and retrieval transfer.

    python -m benchmarks.search_quality OUT_DIR [--keys 0,1,2,3] [--sample 32] [--budget 24]

For each embedding-bag forward key of GRID: (1) a fixed sample of the Triton genome space (tune.candidates)
gives the baseline best; (2) each policy searches from scratch for `budget` evaluations: how many it needs
to reach 95% of the best fitness seen on the key; (3) transfer: the best genome of the nearest other key
(retrieval index) evaluated on this key, as a fraction of this key's best; (4) UCT seeded by that
neighbour against UCT unseeded. Evaluations are memoised in OUT_DIR/evaluations.json, so a rerun resumes
and the contenders share measurements; results go to OUT_DIR/search_quality.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import torch

from torch_kevolve.evolve.evaluation import Candidate, EvaluationResult
from torch_kevolve.evolve.search import Search, SearchConfig
from torch_kevolve.evolve.search_graph import SearchGraph
from torch_kevolve.evolve.termination import Termination
from torch_kevolve.evolve.tune import candidates
from torch_kevolve.families import EMBEDDING_BAG
from torch_kevolve.key import DeviceInfo, OpKey, Problem
from torch_kevolve.retrieval import KeyIndex, KeyVectorizer

from benchmarks.search_grid import GRID, POLICIES, TRITON, evaluations_to, grid_problem

Evaluate = Callable[[Candidate], EvaluationResult]


class Memo:
    """Evaluations by (problem, implementation, genome), kept in a JSON file."""

    def __init__(self, path: Path, evaluate: Evaluate):
        self.path, self.evaluate = path, evaluate
        self.results = json.loads(path.read_text()) if path.exists() else {}

    def __call__(self, candidate: Candidate) -> EvaluationResult:
        key = json.dumps([candidate.problem.to_dict(), candidate.implementation, candidate.genome], sort_keys=True)
        if key not in self.results:
            self.results[key] = self.evaluate(candidate).to_dict()
            self.path.write_text(json.dumps(self.results))
        return EvaluationResult.from_dict(self.results[key])


def run_search(problem: Problem, memo: Memo, device: DeviceInfo, policy: str, budget: int, graphs: Path,
               seeds=()) -> list[tuple[int, float, float]]:
    path = graphs / f"{policy}-{OpKey.of(problem, device).digest}-{len(seeds)}.sqlite"
    path.unlink(missing_ok=True)
    graph = SearchGraph(path)
    config = SearchConfig(policy=policy, termination=Termination(max_evaluations=budget, roofline=None))
    search = Search(EMBEDDING_BAG, problem, [TRITON], memo, graph, device, config, seeds=seeds)
    search.run()
    trajectory = graph.trajectory(search.id)
    graph.close()
    return trajectory


def measure(problems: list[Problem], memo: Memo, device: DeviceInfo, sample: int, budget: int, out: Path,
            on_key: Callable[[dict], None] = lambda result: None) -> dict:
    """The policy, transfer and seeding measurements; `on_key` sees the result so far after each key's report."""
    from torch_kevolve.evolve.evaluation import family_spec

    spec, graphs = family_spec(EMBEDDING_BAG), out / "graphs"
    graphs.mkdir(parents=True, exist_ok=True)
    per_key = []
    for problem in problems:
        baseline = [memo(Candidate(spec, TRITON.name, g, problem)) for g in candidates(TRITON, problem, sample)]
        runs = {policy: run_search(problem, memo, device, policy, budget, graphs) for policy in POLICIES}
        per_key.append({"problem": problem, "baseline_best": max(r.fitness for r in baseline), "runs": runs})
    index = KeyIndex(KeyVectorizer())
    keys = [OpKey.of(p, device) for p in problems]
    index.add(keys)
    report = []
    for entry, key in zip(per_key, keys):
        problem = entry["problem"]
        best = max([entry["baseline_best"]] + [b for run in entry["runs"].values() for _, _, b in run])
        (neighbour,) = index.nearest(key, k=1, exclude_self=True)
        other = per_key[keys.index(neighbour.key)]
        donor = max((r for r in memo.results.items() if json.loads(r[0])[0] == other["problem"].to_dict()),
                    key=lambda r: r[1]["fitness"])
        donor_genome = json.loads(donor[0])[2]
        transferred = memo(Candidate(spec, TRITON.name, donor_genome, problem))
        seeded = run_search(problem, memo, device, "uct", budget, graphs, seeds=[(TRITON.name, donor_genome)])
        target = 0.95 * best
        report.append({
            "key": key.short(), "best_fitness": best, "baseline_best": entry["baseline_best"],
            "evaluations_to_95": {p: evaluations_to(run, target) for p, run in entry["runs"].items()},
            "trajectories": {p: run for p, run in entry["runs"].items()},
            "transfer": {"neighbour": neighbour.key.short(), "distance": neighbour.distance,
                         "genome": donor_genome, "fitness": transferred.fitness,
                         "ratio_to_best": transferred.fitness / best if best else 0.0},
            "seeded_uct_evaluations_to_95": evaluations_to(seeded, target),
            "seeded_uct_trajectory": seeded,
        })
        on_key({"sample": sample, "budget": budget, "keys": report})
    return {"sample": sample, "budget": budget, "keys": report}


def main() -> int:
    from torch_kevolve.evolve.evaluator import Evaluator, EvaluatorConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--keys", default="0,1,2,3", help="indices into GRID")
    p.add_argument("--sample", type=int, default=32, help="genomes of the baseline sample per key")
    p.add_argument("--budget", type=int, default=24, help="evaluations per search")
    p.add_argument("--device", default="cuda")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    problems = [grid_problem(*GRID[int(i)]) for i in args.keys.split(",")]
    context = dict(device=DeviceInfo.of(args.device).__dict__, torch=torch.__version__, command=" ".join(sys.argv))

    def save(result: dict) -> None:  # after every key: a run cut short keeps the keys it finished
        (args.out / "search_quality.json").write_text(json.dumps({**result, **context}, indent=1) + "\n")

    with Evaluator(EvaluatorConfig(device=args.device)) as evaluator:
        memo = Memo(args.out / "evaluations.json", evaluator.evaluate)
        result = measure(problems, memo, DeviceInfo.of(args.device), args.sample, args.budget, args.out, save)
    save(result)
    for k in result["keys"]:
        print(f"{k['key'][:90]:90} to 95%: {k['evaluations_to_95']} seeded uct {k['seeded_uct_evaluations_to_95']} "
              f"transfer {k['transfer']['ratio_to_best']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
