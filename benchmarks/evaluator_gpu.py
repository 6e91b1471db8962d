"""The evaluator on a CUDA device: the planted-cheat table (each bad candidate scored 0; the illegal memory
access costs only its worker), correct embedding-bag candidates' fitness, and the seconds an evaluation takes.

    python -m benchmarks.evaluator_gpu OUT.json [--device cuda]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import triton

from tests.evolve.planted import EXPECTED_CUDA, evaluate_planted, row_sum_problem
from torch_kevolve.evolve.evaluation import Candidate, family_spec
from torch_kevolve.evolve.evaluator import Evaluator, EvaluatorConfig
from torch_kevolve.evolve.tune import candidates
from torch_kevolve.families import EMBEDDING_BAG
from torch_kevolve.key import DeviceInfo

# Triton cheats on a modest problem; the timed decompositions (the memoising cheat among them) on one whose
# copy floor (~180 us on an H100) is far above the host time of a memoised call.
TRITON_PROBLEM = row_sum_problem(1024, 1024)
TIMED_PROBLEM = row_sum_problem(16384, 8192)
LOOP_TIMEOUT_S = 60.0  # the looping kernel is compiled (Inductor, Triton) before it spins
EMBEDDING_GENOMES = 4  # Triton forward genomes evaluated (default first), plus the decomposition's default


def embedding_bag_problem():
    """fp32 sum bags: 100k x 128 table, 65536 indices in bags of 32."""
    args = (torch.empty(100_000, 128), torch.zeros(65536, dtype=torch.int64), torch.zeros(2048, dtype=torch.int64),
            False, 0, False, None, False, -1)
    return EMBEDDING_BAG.problem(torch.ops.aten._embedding_bag.default, args, {})


def planted_table(config: EvaluatorConfig) -> dict:
    start = time.monotonic()
    table = evaluate_planted(config, TRITON_PROBLEM, TIMED_PROBLEM, LOOP_TIMEOUT_S)
    rows = {name: {"expected": EXPECTED_CUDA[name], **row["result"].to_dict()} for name, row in table.items()}
    return {"rows": rows, "all_as_expected": all(r["status"] == r["expected"] for r in rows.values()),
            "seconds": time.monotonic() - start}


def embedding_bag_candidates(config: EvaluatorConfig) -> dict:
    """Correct candidates on one problem: the first evaluation pays for the worker and the reference."""
    problem, spec = embedding_bag_problem(), family_spec(EMBEDDING_BAG)
    plan = [(impl, genome) for impl in EMBEDDING_BAG.implementations
            for genome in candidates(impl, problem, EMBEDDING_GENOMES if impl.abstraction.value == "triton" else 1)]
    evaluations = []
    with Evaluator(config) as evaluator:
        for impl, genome in plan:
            result = evaluator.evaluate(Candidate(spec, impl.name, genome, problem))
            evaluations.append({"implementation": impl.name, "genome": genome, **result.to_dict()})
    steady = [e["seconds"] for e in evaluations[1:]]
    return {"problem": problem.to_dict(), "evaluations": evaluations,
            "first_seconds": evaluations[0]["seconds"],
            "median_seconds_after_first": statistics.median(steady) if steady else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="write the results as JSON here")
    p.add_argument("--device", default="cuda")
    args = p.parse_args()
    config = EvaluatorConfig(device=args.device)
    report = {"device": DeviceInfo.of(args.device).__dict__, "torch": torch.__version__, "triton": triton.__version__,
              "planted": planted_table(config), "embedding_bag": embedding_bag_candidates(config)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"planted candidates ({report['planted']['seconds']:.0f} s):")
    for name, row in report["planted"]["rows"].items():
        mark = "ok " if row["status"] == row["expected"] else "BAD"
        print(f"  {mark} {name:22} {row['status']:14} (expected {row['expected']:14}) {row['seconds']:6.1f} s  "
              f"fitness {row['fitness']:.2f}  {row['error'][:80]!r}")
    eb = report["embedding_bag"]
    for e in eb["evaluations"]:
        print(f"  embedding_bag {e['implementation']:28} {json.dumps(e['genome'])}: {e['status']} fitness "
              f"{e['fitness']:.2f} t_ref {e['t_ref_us']} us t {e['t_cand_us']} us  {e['seconds']:.1f} s {e['kernels']}")
    print(f"seconds per candidate: first {eb['first_seconds']:.1f} (worker start, reference), "
          f"then median {eb['median_seconds_after_first']:.1f}")
    return 0 if report["planted"]["all_as_expected"] else 1


if __name__ == "__main__":
    sys.exit(main())
