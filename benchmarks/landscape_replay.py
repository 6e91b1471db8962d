"""Searches replayed on measured fitness landscapes (benchmarks.landscape): the three policies from many seeds,
retrieval transfer between the keys, and UCT seeded by the nearest key's winner. Runs on any machine: every
evaluation is a lookup in the landscape, so the comparison is exact for these keys and costs no GPU time.

    python -m benchmarks.landscape_replay LANDSCAPE.json OUT.json [--seeds 10] [--budget 48]   (writes OUT.md, OUT.png)

Per key: the exhaustive best; for each policy and seed, the evaluations needed to reach 95% of it (None when
the budget ran out first), against uniform random sampling's expectation ((M+1)/(m+1) draws for m good genomes
of M), and the trajectory plot's data (median best-so-far fraction after each evaluation); the default genome's
fitness. Transfer: for every ordered pair of keys, the donor's best genome's fitness
on the receiver as a fraction of the receiver's best, with the retrieval distance between the keys; the nearest
other key's ratio per key. Seeding: UCT seeded with the nearest key's best genome against UCT unseeded.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.search_grid import POLICIES, TRITON, evaluations_to
from torch_kevolve.evolve.evaluation import Candidate, EvaluationResult, Status
from torch_kevolve.evolve.search import Search, SearchConfig
from torch_kevolve.evolve.search_graph import SearchGraph
from torch_kevolve.evolve.termination import Termination
from torch_kevolve.families import EMBEDDING_BAG
from torch_kevolve.key import DeviceInfo, OpKey, Problem
from torch_kevolve.retrieval import KeyIndex, KeyVectorizer

GOOD = 0.95


def genome_id(genome: dict) -> str:
    return json.dumps(genome, sort_keys=True)


class Landscape:
    """One key's measured genomes: fitness lookups and the EvaluationResult the evaluator would have given."""

    def __init__(self, key: dict):
        self.problem = Problem.from_dict(key["problem"])
        self.reference_us, self.bytes_moved = key["reference_us"], key["bytes_moved"]
        self.floor_us, self.ceiling_gbps = key["floor_us"], key["ceiling_gbps"]
        self.rows = {genome_id(row["genome"]): row for row in key["genomes"]}
        self.default = TRITON.default_genome(self.problem)
        best = max(self.rows.values(), key=lambda row: row["fitness"])
        self.best, self.winner = best["fitness"], best["genome"]

    def label(self) -> str:
        """The key's dims and dtypes, briefly."""
        return " ".join(f"{name}={value}" for name, value in (*self.problem.dims, *self.problem.dtypes))

    def fitness(self, genome: dict) -> float:
        row = self.rows.get(genome_id(genome))
        return row["fitness"] if row else 0.0

    def evaluate(self, candidate: Candidate) -> EvaluationResult:
        row = self.rows[genome_id(candidate.genome)]
        if row["status"] != Status.OK.value:
            return EvaluationResult(Status(row["status"]), row["error"], t_ref_us=self.reference_us)
        return EvaluationResult(Status.OK, fitness=row["fitness"], t_ref_us=self.reference_us, t_cand_us=row["us"],
                                floor_us=self.floor_us, ceiling_gbps=self.ceiling_gbps, timing="graphed",
                                achieved_gbps=self.bytes_moved / (row["us"] * 1e3))

    def random_draws_to_good(self) -> float:
        """Expected uniform draws without replacement until one reaches GOOD x the best."""
        good = sum(row["fitness"] >= GOOD * self.best for row in self.rows.values())
        return (len(self.rows) + 1) / (good + 1)


def replay(landscape: Landscape, device: DeviceInfo, policy: str, seed: int, budget: int, folder: Path,
           seeds=()) -> list[tuple[int, float, float]]:
    """The trajectory of one search on the landscape (graph kept in `folder`)."""
    graph = SearchGraph(folder / f"{policy}-{seed}-{len(seeds)}-{OpKey.of(landscape.problem, device).digest}.sqlite")
    config = SearchConfig(policy=policy, seed=seed, termination=Termination(max_evaluations=budget, roofline=None))
    search = Search(EMBEDDING_BAG, landscape.problem, [TRITON], landscape.evaluate, graph, device, config, seeds=seeds)
    search.run()
    trajectory = graph.trajectory(search.id)
    graph.close()
    return trajectory


def spread(values: list) -> dict:
    """Median and mean of the reached values, and the fraction that reached at all."""
    reached = [v for v in values if v is not None]
    return {"reached": len(reached) / len(values) if values else 0.0,
            "median": statistics.median(reached) if reached else None,
            "mean": statistics.fmean(reached) if reached else None, "runs": values}


def searches(trajectories: list[list[tuple[int, float, float]]], best: float, budget: int) -> dict:
    """The searches' evaluations to GOOD x `best` (spread), and the trajectory plot's data: after each of the
    `budget` evaluations, the median over the searches of the best fitness so far as a fraction of `best`."""
    curves = [[b / best for _, _, b in t] + [t[-1][2] / best if t else 0.0] * (budget - len(t)) for t in trajectories]
    return {**spread([evaluations_to(t, GOOD * best) for t in trajectories]),
            "median_best_fraction": [statistics.median(c[n] for c in curves) for n in range(budget)]}


def transfers(landscapes: list[Landscape], keys: list[OpKey]) -> tuple[list[dict], list[OpKey]]:
    """Every ordered pair's transfer ratio and distance; the nearest other key of each key."""
    index = KeyIndex(KeyVectorizer())
    index.add(keys)
    pairs = []
    for receiver, key in zip(landscapes, keys):
        similarity = {n.key: n.similarity for n in index.nearest(key, k=len(keys))}
        for donor, other in zip(landscapes, keys):
            if donor is not receiver:
                pairs.append({"receiver": key.short(), "donor": other.short(), "distance": 1.0 - similarity[other],
                              "genome": donor.winner, "ratio_to_best": receiver.fitness(donor.winner) / receiver.best})
    nearest = [index.nearest(key, k=1, exclude_self=True)[0].key for key in keys]
    return pairs, nearest


def run(landscape_file: dict, seeds: int, budget: int, folder: Path) -> dict:
    device = DeviceInfo(**landscape_file["device"])
    landscapes = [Landscape(key) for key in landscape_file["keys"]]
    keys = [OpKey.of(landscape.problem, device) for landscape in landscapes]
    pairs, nearest = transfers(landscapes, keys)
    report = []
    for landscape, key, neighbour in zip(landscapes, keys, nearest):
        donor_genome = landscapes[keys.index(neighbour)].winner
        policies = {policy: searches([replay(landscape, device, policy, s, budget, folder) for s in range(seeds)],
                                     landscape.best, budget) for policy in POLICIES}
        seeded = searches([replay(landscape, device, "uct", s, budget, folder, seeds=[(TRITON.name, donor_genome)])
                           for s in range(seeds)], landscape.best, budget)
        report.append({
            "key": key.short(), "label": landscape.label(), "genomes": len(landscape.rows), "best_fitness": landscape.best,
            "default_fitness": landscape.fitness(landscape.default),
            "random_expected_draws_to_95": landscape.random_draws_to_good(),
            "evaluations_to_95": policies, "seeded_uct_evaluations_to_95": seeded,
            "nearest": {"key": neighbour.short(), "genome": donor_genome,
                        "ratio_to_best": landscape.fitness(donor_genome) / landscape.best},
        })
    return {"seeds": seeds, "budget": budget, "device": landscape_file["device"], "keys": report,
            "transfer_pairs": pairs}


def markdown(result: dict) -> str:
    """A row per key: evaluations to 95% of the best per policy (median over the seeds that reached it, and the
    fraction that did), random sampling's expectation, seeded UCT, and the nearest key's winner's ratio."""
    def cell(s: dict) -> str:
        return f"{s['median']:.0f} ({s['reached']:.0%})" if s["median"] is not None else "- (0%)"

    lines = ["| key | genomes | best | default | " + " | ".join(POLICIES) + " | random | seeded uct | nearest's winner |",
             "|---|---:|---:|---:|" + "---:|" * (len(POLICIES) + 3)]
    for k in result["keys"]:
        lines.append(f"| {k['label']} | {k['genomes']} | {k['best_fitness']:.2f} | {k['default_fitness']:.2f} | "
                     + " | ".join(cell(k["evaluations_to_95"][p]) for p in POLICIES)
                     + f" | {k['random_expected_draws_to_95']:.0f} | {cell(k['seeded_uct_evaluations_to_95'])} | "
                     f"{k['nearest']['ratio_to_best']:.2f} |")
    ratios = sorted(p["ratio_to_best"] for p in result["transfer_pairs"])
    if ratios:
        lines.append(f"\nTransfer (all {len(ratios)} ordered pairs): ratio to the receiver's best min {ratios[0]:.2f}, "
                     f"median {statistics.median(ratios):.2f}, max {ratios[-1]:.2f}.")
    return "\n".join(lines) + "\n"


def plot(result: dict, out: Path) -> None:
    """The trajectory plot: per key, each policy's (and seeded UCT's) median best-so-far fraction of the
    exhaustive best after each evaluation, with the 95% line, as a PNG at `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = result["keys"]
    fig, axes = plt.subplots((len(keys) + 2) // 3, min(len(keys), 3), figsize=(12, 3.2 * ((len(keys) + 2) // 3)),
                             squeeze=False)
    for ax, k in zip(axes.flat, keys):
        curves = {**k["evaluations_to_95"], "uct seeded": k["seeded_uct_evaluations_to_95"]}
        for name, s in curves.items():
            ax.step(range(1, len(s["median_best_fraction"]) + 1), s["median_best_fraction"], where="post", label=name)
        ax.axhline(GOOD, color="grey", linewidth=0.8, linestyle="--")
        ax.set_title(k["label"].replace(" num_indices=262144 num_bags=8192", ""), fontsize=7)
        ax.set(xlabel="evaluation", ylabel="best so far / exhaustive best", ylim=(0.4, 1.02))
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"median over {result['seeds']} searches per policy", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("landscape", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=48)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        result = run(json.loads(args.landscape.read_text()), args.seeds, args.budget, Path(folder))
    result["command"] = "python -m benchmarks.landscape_replay " + " ".join(argv or sys.argv[1:])
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    plot(result, args.out.with_suffix(".png"))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
