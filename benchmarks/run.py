"""Run a model benchmark: eager vs Inductor (vs Inductor max-autotune) vs kevolve, forward and training steps,
checked against a float64 copy of the model (eager for bf16 autocast models).

    python -m benchmarks.run NAME [--device cuda] [--warm [--budget 10m] [--evaluations N] [--warm-only]]
                                  [--max-autotune] [--forward-only] [--families F...] [--interpret] [--save PATH.json]

With --warm-only the run stops after the warm (printing every evaluation): a later run without --warm measures
with the filled cache, e.g. on another call to a lent GPU.
"""
from __future__ import annotations

import argparse
import copy
import functools
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from torch_kevolve.backend import kevolve_backend
from torch_kevolve.backend.decisions import collect_decisions
from torch_kevolve.cli import parse_budget
from torch_kevolve.evolve.search import SearchConfig
from torch_kevolve.evolve.termination import Termination
from torch_kevolve.families import FAMILIES
from torch_kevolve.key import DeviceInfo
from torch_kevolve.warm import warm

from . import report
from .harness import Contender, Reference, Tolerance, measure, warm_up_compiler
from .models import dcnv2, dlrm, seq

FP32 = Tolerance(loss=1e-4, grad=1e-3)
# bf16 keeps 8 mantissa bits (a rounding costs up to 2**-9 ~ 2e-3 relative). Eager rounds every op's output to
# bf16 under autocast where Inductor's fused kernels keep fp32 in between, so the two differ by a few roundings
# per layer: on dlrm_bf16_tiny on CPU Inductor's gradients differ from eager's by up to 1.5e-2 (losses agree).
# 2e-2 / 5e-2 leave a margin over that and still catch a wrong kernel (a missed or doubled term is order 1e-1+).
BF16 = Tolerance(loss=2e-2, grad=5e-2)


@dataclass(frozen=True)
class Benchmark:
    """A model factory `(device) -> (model, inputs)` and how close kevolve must stay to the reference on it:
    a float64 copy of the model (fp32 models), or eager (`float64_reference` False: bf16 under autocast, whose
    rounding is part of the model)."""

    factory: Callable[[str], tuple[torch.nn.Module, tuple]]
    tolerance: Tolerance = FP32
    float64_reference: bool = True


BENCHMARKS = {
    "dlrm_small": Benchmark(dlrm.small_dlrm),
    "dlrm": Benchmark(dlrm.dlrm), "dlrm_tiny": Benchmark(dlrm.dlrm_tiny),
    "dlrm_bf16": Benchmark(dlrm.dlrm_bf16, BF16, False),
    "dlrm_bf16_tiny": Benchmark(dlrm.dlrm_bf16_tiny, BF16, False),
    "dcnv2": Benchmark(dcnv2.dcnv2), "dcnv2_tiny": Benchmark(dcnv2.dcnv2_tiny),
    "seq": Benchmark(seq.seq), "seq_tiny": Benchmark(seq.seq_tiny),
}


def contenders(options: dict, max_autotune: bool, cudagraphs: bool = False) -> list[Contender]:
    """eager, Inductor (default mode), Inductor max-autotune if asked, kevolve (collecting its node decisions),
    and if asked Inductor and kevolve with CUDA graphs (mode="reduce-overhead": no per-launch CPU cost)."""
    out = [Contender("eager", lambda m: m), Contender("inductor", torch.compile)]
    if max_autotune:
        out.append(Contender("inductor-max-autotune", lambda m: torch.compile(m, mode="max-autotune")))
    out.append(Contender("kevolve", lambda m: torch.compile(m, backend="kevolve", options=options),
                         watch=collect_decisions))
    if cudagraphs:
        graphed = functools.partial(kevolve_backend, options=options, mode="reduce-overhead")
        out += [Contender("inductor-cudagraphs", lambda m: torch.compile(m, mode="reduce-overhead")),
                Contender("kevolve-cudagraphs", lambda m: torch.compile(m, backend=graphed))]
    return out


@dataclass(frozen=True)
class RunConfig:
    """One benchmark run: model `name` on `device`; kevolve warmed first by `search` within `budget_s` if given
    (and nothing measured if `warm_only`; keys the caches answer already searched again if `retune`; the new
    records checked in the model and those that slow its step discarded if `check_model`), forced onto
    its Triton kernels if `interpret`, restricted to `families` if given."""

    name: str
    device: str
    search: SearchConfig | None = None
    budget_s: float | None = None
    interpret: bool = False
    max_autotune: bool = False
    forward_only: bool = False
    cudagraphs: bool = False
    families: tuple[str, ...] | None = None
    save: Path | None = None
    warm_only: bool = False
    retune: bool = False
    check_model: bool = False


def run(cfg: RunConfig) -> int:
    """Measure the benchmark, print (and save) the results; 0 if kevolve matches eager."""
    bench = BENCHMARKS[cfg.name]
    dev = torch.device(cfg.device)
    model, inputs = bench.factory(cfg.device)
    options = {"interpret": True} if cfg.interpret else {}
    if cfg.families:
        options["families"] = list(cfg.families)
    if cfg.search is not None:
        warm(copy.deepcopy(model), inputs, dev, options, verbose=cfg.warm_only, search=cfg.search,
             budget_s=cfg.budget_s, retune=cfg.retune, check_model=cfg.check_model)
        if cfg.warm_only:
            return 0
    ref = (Reference.float64 if bench.float64_reference else Reference.of)(model, inputs)
    warm_up_compiler(dev)
    results = [measure(c, model, inputs, ref, dev, train=not cfg.forward_only)
               for c in contenders(options, cfg.max_autotune, cfg.cudagraphs)]
    kevolve = next(r for r in results if r.name == "kevolve")
    decisions = kevolve.watched
    tolerance = bench.tolerance.at_least_twice(*(r for r in results if r.name in ("eager", "inductor")))
    ok = kevolve.within(tolerance)
    print(f"\n{cfg.name} on {DeviceInfo.of(dev).name}: {len(decisions)} calls offered (ATen nodes and epilogue "
          f"patterns), {sum(d.claimed for d in decisions)} claimed by kevolve")
    for d in decisions:
        if d.claimed:
            print(f"  claimed  {d.graph:8} {d.op:42} -> {d.implementation} {json.dumps(d.genome)}")
    left = Counter((d.graph, d.op, d.reason) for d in decisions if d.family and not d.claimed)
    for (graph, op, reason), n in sorted(left.items()):
        print(f"  inductor {graph:8} {op:42} x{n} ({reason})")
    warmed = None if cfg.search is None else {"budget_s": cfg.budget_s, "policy": cfg.search.policy,
                                              "evaluations": cfg.search.termination.max_evaluations}
    summary = report.summary(cfg.name, dev, results, decisions, tolerance, ok, warmed, cfg.families,
                             reference="float64" if bench.float64_reference else "eager")
    report.publish(summary, cfg.save)
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(BENCHMARKS))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--warm", action="store_true", help="evolve the model's kernels into the user cache first")
    p.add_argument("--budget", type=parse_budget, default=300.0, help="with --warm: wall clock (default 5m)")
    p.add_argument("--evaluations", type=int, default=24, help="with --warm: evaluations per key (default %(default)s)")
    p.add_argument("--policy", default="uct", choices=("greedy", "uct", "islands"), help="with --warm")
    p.add_argument("--warm-only", action="store_true", help="with --warm: stop after the warm, measure nothing")
    p.add_argument("--retune", action="store_true",
                   help="with --warm: search the keys the caches already answer too (new implementations, say)")
    p.add_argument("--check-model", action="store_true",
                   help="with --warm: time the model with and without the new records, discard those that slow it")
    p.add_argument("--max-autotune", action="store_true", help="also Inductor with mode='max-autotune' (compiles long)")
    p.add_argument("--cudagraphs", action="store_true",
                   help="also Inductor and kevolve with mode='reduce-overhead' (CUDA graphs; CUDA only)")
    p.add_argument("--forward-only", action="store_true", help="time the forward step only (no training step)")
    p.add_argument("--interpret", action="store_true", help="force Triton kernels (interpreted on CPU): tests the rewrite")
    p.add_argument("--families", nargs="+", choices=sorted(f.name for f in FAMILIES), metavar="FAMILY",
                   help="restrict kevolve (warm and compile) to these kernel families")
    p.add_argument("--save", type=Path, help="write the results as JSON here, and as markdown beside it (.md)")
    args = p.parse_args()
    if (args.warm_only or args.retune or args.check_model) and not args.warm:
        p.error("--warm-only, --retune and --check-model need --warm")
    logging.basicConfig(format="%(message)s", level=logging.WARNING)
    if args.warm_only:  # say how long each key takes to prepare
        logging.getLogger("torch_kevolve").setLevel(logging.INFO)
    search = (SearchConfig(policy=args.policy, termination=Termination(max_evaluations=args.evaluations))
              if args.warm else None)
    return run(RunConfig(args.name, args.device, search, args.budget, args.interpret, args.max_autotune,
                         args.forward_only, args.cudagraphs, tuple(args.families) if args.families else None, args.save,
                         args.warm_only, args.retune, args.check_model))


if __name__ == "__main__":
    sys.exit(main())
