"""Embedding-bag microbenchmark: eager vs Inductor vs kevolve, forward and forward+backward (dense grad).

    python -m benchmarks.embedding_bag [--cases 0,1] [--limit N] [--save PATH] [--tune only|skip|here]

Each case is tuned first (`kevolve tune` path: every variant checked against float64, timed like the
torch.compile'd reference), then the user-facing path is timed: `torch.compile(fn, backend="kevolve")`.
`--tune only` warms the cache and exits, `--tune skip` measures with the cache as it is: the two in
turn measure the way users run (cache warmed offline, training in a fresh process).
Effective bytes are the family's roofline bytes; the copy ceiling is measured in the same process.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import triton

from torch_kevolve.backend.decisions import collect_decisions
from torch_kevolve.evolve.timing import copy_ceiling_gbps, median_us
from torch_kevolve.key import DeviceInfo
from torch_kevolve.warm import warm

from .device_time import kernel_us


@dataclass(frozen=True)
class Case:
    rows: int
    dim: int
    indices: int
    bag: int
    mode: str
    dtype: str

    @property
    def label(self) -> str:
        return f"{self.rows}x{self.dim} {self.dtype} {self.mode} N={self.indices} L={self.bag}"


CASES = [
    Case(1_000_000, 128, 262_144, 32, "sum", "float32"),
    Case(1_000_000, 128, 262_144, 32, "sum", "float16"),
    Case(1_000_000, 128, 262_144, 32, "sum", "bfloat16"),
    Case(1_000_000, 128, 262_144, 32, "mean", "float32"),
    Case(1_000_000, 128, 262_144, 32, "max", "float32"),
]


# (name, with backward, gradients accumulated into weight.grad across steps)
PHASES = (("forward", False, False), ("forward_backward", True, False), ("forward_backward_accumulate", True, True))


class Bag(torch.nn.Module):
    """One embedding bag whose forward (and backward, when weight requires grad) kevolve may claim."""

    def __init__(self, weight: torch.Tensor, mode: str):
        super().__init__()
        self.weight = torch.nn.Parameter(weight)
        self.mode = mode

    def forward(self, indices, offsets):
        return F.embedding_bag(indices, self.weight, offsets, mode=self.mode)


def inputs(case: Case, device: str, seed: int = 0):
    g = torch.Generator(device=device).manual_seed(seed)
    weight = torch.randn(case.rows, case.dim, device=device, generator=g).to(getattr(torch, case.dtype))
    indices = torch.randint(0, case.rows, (case.indices,), device=device, generator=g)
    offsets = torch.arange(0, case.indices, case.bag, device=device)
    return weight, indices, offsets


def fwd_bytes(case: Case) -> int:
    elt = torch.empty(0, dtype=getattr(torch, case.dtype)).element_size()
    bags = case.indices // case.bag
    return case.indices * 8 + bags * 8 + case.indices * case.dim * elt + bags * case.dim * elt


def warm_case(case: Case, device: torch.device, limit: int | None) -> None:
    """Tune every key the case's phases reach (the forward, and the backward with its gradient)."""
    weight, indices, offsets = inputs(case, device.type)
    for train in (False, True):
        warm(Bag(weight.clone(), case.mode).requires_grad_(train), (indices, offsets), device, limit=limit)


def bench_case(case: Case, device: torch.device) -> dict:
    weight, indices, offsets = inputs(case, device.type)
    grad = torch.randn(case.indices // case.bag, case.dim, device=device).to(weight.dtype)
    result = {"case": asdict(case), "label": case.label}
    for phase, train, accumulate in PHASES:
        def make():
            return Bag(weight.clone(), case.mode).requires_grad_(train)

        eager, inductor = make(), torch.compile(make())
        torch._dynamo.reset()
        kevolve_module = make()
        kevolve = torch.compile(kevolve_module, backend="kevolve")

        def step(m):
            if not train:
                with torch.no_grad():
                    return m(indices, offsets)
            if not accumulate:
                m.zero_grad(set_to_none=True)
            out = m(indices, offsets)
            out.backward(grad)
            return out

        want = step(eager)
        inductor_out = step(inductor)
        with collect_decisions() as decisions:
            got = step(kevolve)
        tol = {"float32": 1e-4, "float16": 2e-2, "bfloat16": 1e-1}[case.dtype]
        ok = torch.allclose(got.float(), want.float(), rtol=tol, atol=tol) and torch.allclose(
            inductor_out.float(), want.float(), rtol=tol, atol=tol)
        if train:
            ok = ok and torch.allclose(kevolve_module.weight.grad.float(), eager.weight.grad.float(), rtol=tol, atol=tol)
        contenders = (("eager", eager), ("inductor", inductor), ("kevolve", kevolve))
        times = {name: median_us(lambda m=m: step(m), device) for name, m in contenders}
        kernel_times = {name: kernel_us(lambda m=m: step(m)) for name, m in contenders}
        result[phase] = {
            "times_us": times, "kernel_us": kernel_times, "correct": bool(ok),
            "claimed": [f"{d.op} -> {d.implementation} {json.dumps(d.genome)}" for d in decisions if d.claimed],
            "left": [f"{d.op}: {d.reason}" for d in decisions if d.family and not d.claimed],
            "speedup_vs_eager": times["eager"] / times["kevolve"],
            "speedup_vs_inductor": times["inductor"] / times["kevolve"],
            "kernel_speedup_vs_eager": kernel_times["eager"] / kernel_times["kevolve"],
            "kernel_speedup_vs_inductor": kernel_times["inductor"] / kernel_times["kevolve"],
        }
        if not train:
            result[phase]["effective_tbps"] = {k: fwd_bytes(case) / (t * 1e6) for k, t in times.items()}
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=",".join(map(str, range(len(CASES)))), help="indices into CASES")
    p.add_argument("--limit", type=int, default=32, help="variants tuned per implementation and key")
    p.add_argument("--save", type=Path, help="write the results as JSON here")
    p.add_argument("--tune", choices=("here", "only", "skip"), default="here",
                   help="tune in this process before measuring (here), tune and exit (only), or measure only (skip)")
    args = p.parse_args()
    device = torch.device("cuda")
    cases = [CASES[int(i)] for i in args.cases.split(",")]
    if args.tune != "skip":
        for case in cases:
            warm_case(case, device, args.limit)
        if args.tune == "only":
            return 0
    ceiling = copy_ceiling_gbps(device)
    results = [bench_case(case, device) for case in cases]
    print(f"\ncopy ceiling {ceiling / 1e3:.2f} TB/s")
    print("wall: do_bench median per step; kernels: profiled GPU kernel time per step")
    print(f"{'case':40} {'phase':27} {'eager us':>17} {'inductor us':>17} {'kevolve us':>17} "
          f"{'vs eager':>11} {'vs ind':>11} TB/s ok")
    for r in results:
        for phase, _, _ in PHASES:
            x = r[phase]
            t, k = x["times_us"], x["kernel_us"]
            tbps = x.get("effective_tbps", {}).get("kevolve")
            cells = " ".join(f"{t[n]:8.1f}/{k[n]:8.1f}" for n in ("eager", "inductor", "kevolve"))
            print(f"{r['label']:40} {phase:27} {cells} {x['speedup_vs_eager']:5.2f}/{x['kernel_speedup_vs_eager']:5.2f} "
                  f"{x['speedup_vs_inductor']:5.2f}/{x['kernel_speedup_vs_inductor']:5.2f} "
                  f"{'' if tbps is None else f'{tbps:.2f}':>4} {x['correct']}")
    if args.save:
        out = args.save
        out.write_text(json.dumps({
            "device": asdict(DeviceInfo.of(device)), "torch": torch.__version__, "triton": triton.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv), "copy_ceiling_gbps": ceiling, "results": results}, indent=2) + "\n")
        print(f"wrote {out}")
    return 0 if all(r[p]["correct"] for r in results for p, _, _ in PHASES) else 1


if __name__ == "__main__":
    sys.exit(main())
