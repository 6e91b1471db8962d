"""Feature-preprocessing microbenchmark: eager vs Inductor vs kevolve for each module of
benchmarks.models.preprocessing at several batch sizes, in one process (CUDA only).

    python -m benchmarks.preprocessing OUT.json [--modules map_id,mbdt] [--batches 2048,65536] [--limit N]
                                                [--budget SECONDS]

Per module and batch: outputs of Inductor and kevolve are checked exact against eager first; then the
bucketize keys the module poses are tuned (`kevolve tune` path, at most --limit variants per
implementation) into a temporary cache, and `torch.compile(backend="kevolve")` is timed over that cache
(kevolve restricted to the bucketize family). Times: triton.testing.do_bench median (us), L2 flushed.
Batch sizes are the outer loop; once --budget seconds have passed, the remaining runs are listed as skipped.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch
import triton

from torch_kevolve.backend.decisions import collect_decisions
from torch_kevolve.evolve.timing import median_us
from torch_kevolve.key import DeviceInfo
from torch_kevolve.warm import warm

from .models.preprocessing import FACTORIES, make

BATCHES = (2048, 8192, 32768, 65536)


def same(got, want) -> bool:
    """Exactly equal outputs (a tensor or a tuple of tensors)."""
    if isinstance(want, tuple):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want))
    return got.dtype == want.dtype and torch.equal(got, want)


def bench(name: str, batch: int, device: torch.device, options: dict, limit: int) -> dict:
    """Times (us) of eager, Inductor and kevolve on one module and batch, with the claimed nodes."""
    module, inputs = make(name, batch, device)
    with torch.no_grad():
        want = module(*inputs)
        torch._dynamo.reset()
        inductor = torch.compile(module)
        correct = {"inductor": same(inductor(*inputs), want)}
        times = {"eager": median_us(lambda: module(*inputs), device),
                 "inductor": median_us(lambda: inductor(*inputs), device)}
        torch._dynamo.reset()
        tuned = warm(module, inputs, device, options=options, limit=limit, verbose=False, say=lambda line: None)
        torch._dynamo.reset()
        kevolve = torch.compile(module, backend="kevolve", options=options)
        with collect_decisions() as decisions:
            correct["kevolve"] = same(kevolve(*inputs), want)
        times["kevolve"] = median_us(lambda: kevolve(*inputs), device)
    return {
        "module": name, "batch": batch, "times_us": times, "correct": correct,
        "tuned": [{"key": r.key.short(), "implementation": r.implementation, "genome": r.genome,
                   "fitness": r.fitness} for r in tuned],
        "claimed": [f"{d.op} -> {d.implementation} {json.dumps(d.genome)}" for d in decisions if d.claimed],
        "left": [f"{d.op}: {d.reason}" for d in decisions if d.family and not d.claimed],
        "speedup_vs_eager": times["eager"] / times["kevolve"],
        "speedup_vs_inductor": times["inductor"] / times["kevolve"],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="write the results as JSON here")
    p.add_argument("--modules", default=",".join(FACTORIES), help=f"comma-separated, of {', '.join(FACTORIES)}")
    p.add_argument("--batches", default=",".join(map(str, BATCHES)), help="comma-separated batch sizes")
    p.add_argument("--limit", type=int, default=3, help="variants tuned per implementation and key")
    p.add_argument("--budget", type=float, default=200, help="start no new run after this many seconds")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks.preprocessing: needs a CUDA device; none here, skipped")
        return 0
    device = torch.device("cuda")
    modules, batches = args.modules.split(","), [int(b) for b in args.batches.split(",")]
    unknown = sorted(set(modules) - set(FACTORIES))
    if unknown:
        p.error(f"unknown modules {unknown}")
    options = {"cache_dir": tempfile.mkdtemp(prefix="kevolve-preprocessing-"), "families": ["bucketize"],
               "shipped_cache": False}
    results, skipped, started = [], [], time.monotonic()
    print(f"{'module':22} {'batch':>6} {'eager us':>9} {'inductor':>9} {'kevolve':>9} {'vs eager':>8} {'vs ind':>7} "
          "exact claimed")
    for batch in batches:
        for name in modules:
            if time.monotonic() - started > args.budget:
                skipped.append({"module": name, "batch": batch})
                continue
            r = bench(name, batch, device, options, args.limit)
            results.append(r)
            t = r["times_us"]
            print(f"{name:22} {batch:6} {t['eager']:9.1f} {t['inductor']:9.1f} {t['kevolve']:9.1f} "
                  f"{r['speedup_vs_eager']:8.2f} {r['speedup_vs_inductor']:7.2f} "
                  f"{all(r['correct'].values())!s:5} {len(r['claimed'])}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "device": asdict(DeviceInfo.of(device)), "torch": torch.__version__, "triton": triton.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv), "limit": args.limit, "seconds": time.monotonic() - started,
        "results": results, "skipped_for_budget": skipped}, indent=2) + "\n")
    print(f"wrote {args.out}" + (f"; {len(skipped)} runs skipped for the time budget" if skipped else ""))
    return 0 if all(all(r["correct"].values()) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
