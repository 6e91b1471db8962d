"""Where the host time of a model's forward (or training step) goes, Inductor against kevolve: wall time per step
with the steps issued back to back (one synchronisation at the end, so a step that is host-bound shows its host
time), the host time of issuing each phase of a step (forward; for the training step also backward, which returns
once its last kernel is queued), the profiler's CPU ops by self time, and cProfile's Python functions by own time.

    python -m benchmarks.host_time NAME OUT.json [--device cuda] [--steps 50] [--phase forward|train]

NAME is a model of benchmarks.run.BENCHMARKS; kevolve uses the caches as they are (no warm). The profiler and
cProfile slow the steps they watch: compare their rows between contenders, not with the wall time.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from .harness import forward_step, sync, train_step
from .run import BENCHMARKS

TOP = 30  # rows kept of each profile
STEPS = {"forward": forward_step, "train": train_step}  # phase -> step(model, inputs)


def wall_us(step: Callable[[], object], device: torch.device, steps: int) -> float:
    """Mean wall time of `steps` steps issued back to back, after a few unmeasured ones."""
    for _ in range(3):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - start) / steps * 1e6


def host_split_us(model: Callable, inputs: tuple, device: torch.device, steps: int, phase: str) -> dict:
    """Median host time per step of issuing the forward (after the gradients are reset, for the training step) and,
    for the training step, the backward; the steps are issued back to back, as in wall_us."""
    forward, backward = [], []
    for _ in range(steps):
        start = time.perf_counter()
        if phase == "train":
            model.zero_grad(set_to_none=True)
            loss = model(*inputs)
        else:
            forward_step(model, inputs)
        issued = time.perf_counter()
        if phase == "train":
            loss.backward()
        forward.append(issued - start)
        backward.append(time.perf_counter() - issued)
    sync(device)
    split = {"forward_host_us": statistics.median(forward) * 1e6}
    if phase == "train":
        split["backward_host_us"] = statistics.median(backward) * 1e6
    return split


def profiler_rows(step: Callable[[], object], device: torch.device, steps: int) -> list[dict]:
    """The profiler's CPU ops over `steps` steps, by self time per step, most first."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
        sync(device)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:TOP]
    return [{"op": e.key, "calls_per_step": e.count / steps, "self_us": e.self_cpu_time_total / steps,
             "total_us": e.cpu_time_total / steps} for e in events]


def python_profile(step: Callable[[], object], device: torch.device, steps: int) -> str:
    """cProfile's table of `steps` steps, by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    sync(device)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(TOP)
    return text.getvalue()


def measure(name: str, device: torch.device, steps: int, phase: str = "forward") -> dict:
    """contender -> wall time per step, profiler rows and cProfile table of model `name`'s `phase` step."""
    model, inputs = BENCHMARKS[name].factory(str(device))
    result = {}
    for label, compiled in (("inductor", torch.compile(model)), ("kevolve", torch.compile(model, backend="kevolve"))):
        torch._dynamo.reset()
        step = lambda: STEPS[phase](compiled, inputs)  # noqa: E731 - the step each profile repeats
        result[label] = {"wall_us": wall_us(step, device, steps),
                         "host_split": host_split_us(compiled, inputs, device, steps, phase),
                         "ops": profiler_rows(step, device, min(steps, 10)),
                         "python": python_profile(step, device, min(steps, 20))}
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", choices=sorted(BENCHMARKS))
    p.add_argument("out", type=Path)
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=50, help="steps of the wall-time loop")
    p.add_argument("--phase", choices=sorted(STEPS), default="forward", help="the step timed: forward or training")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("benchmarks.host_time on cuda needs a CUDA device; skipped")
        return 0
    result = measure(args.name, device, args.steps, args.phase)
    args.out.write_text(json.dumps({"model": args.name, "phase": args.phase, "device": str(device),
                                    "torch": torch.__version__,
                                    "command": " ".join(sys.argv), "contenders": result}, indent=1) + "\n")
    for label, r in result.items():
        split = ", ".join(f"{k.removesuffix('_us').replace('_', ' ')} {v:.1f} us" for k, v in r["host_split"].items())
        print(f"{args.name} {label}: {r['wall_us']:.1f} us per {args.phase} step; {split}")
        for row in r["ops"][:12]:
            print(f"  {row['self_us']:9.1f} us self  x{row['calls_per_step']:<5g} {row['op'][:90]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
