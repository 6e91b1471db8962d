"""Run a model benchmark: eager vs Inductor vs kevolve training steps, checked against eager.

    python -m benchmarks.run dlrm_small [--device cuda] [--warm [--budget 10m] [--evaluations N]] [--interpret] [--save PATH]
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import logging
import platform
import sys
from pathlib import Path

import torch
import triton

from torch_kevolve.backend.decisions import collect_decisions
from torch_kevolve.evolve.timing import median_us
from torch_kevolve.key import DeviceInfo
from torch_kevolve.cli import parse_budget
from torch_kevolve.evolve.search import SearchConfig
from torch_kevolve.evolve.termination import Termination
from torch_kevolve.warm import warm

from .device_time import kernel_us
from .models import dlrm

BENCHMARKS = {"dlrm_small": dlrm.small_dlrm}


def train_step(model: torch.nn.Module, inputs: tuple) -> torch.Tensor:
    """Forward + backward; gradients are replaced, not accumulated."""
    model.zero_grad(set_to_none=True)
    loss = model(*inputs)
    loss.backward()
    return loss


def max_grad_error(a: torch.nn.Module, b: torch.nn.Module) -> tuple[float, str]:
    """Largest relative gradient difference between two copies of one model, and where."""
    worst, where = 0.0, ""
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        err = ((pa.grad - pb.grad).abs().max() / pb.grad.abs().max().clamp_min(1e-12)).item()
        if err > worst:
            worst, where = err, name
    return worst, where


def run(name: str, device: str, search: SearchConfig | None, budget_s: float | None, interpret: bool,
        save: Path | None) -> int:
    model, inputs = BENCHMARKS[name](device=device)
    options = {"interpret": True} if interpret else {}
    if search is not None:
        warm(copy.deepcopy(model), inputs, torch.device(device), options, verbose=False, search=search,
             budget_s=budget_s)
    torch._dynamo.reset()
    eager = model
    inductor = torch.compile(copy.deepcopy(model))
    kevolve_model = copy.deepcopy(model)
    kevolve = torch.compile(kevolve_model, backend="kevolve", options=options)

    eager_loss = train_step(eager, inputs)
    train_step(inductor, inputs)
    with collect_decisions() as decisions:
        kevolve_loss = train_step(kevolve, inputs)
    loss_err = abs(kevolve_loss.item() - eager_loss.item()) / max(abs(eager_loss.item()), 1e-12)
    grad_err, grad_where = max_grad_error(kevolve_model, eager)
    ok = loss_err < 1e-4 and grad_err < 1e-3

    dev = torch.device(device)
    contenders = (("eager", eager), ("inductor", inductor), ("kevolve", kevolve))
    times = {label: median_us(lambda m=m: train_step(m, inputs), dev) for label, m in contenders}
    kernel_times = {label: kernel_us(lambda m=m: train_step(m, inputs)) for label, m in contenders} if dev.type == "cuda" else None

    claimed = [d for d in decisions if d.claimed]
    ours = [d for d in decisions if d.family and not d.claimed]
    print(f"\n{name} on {DeviceInfo.of(dev).name}: {len(decisions)} ATen nodes, {len(claimed)} claimed by kevolve")
    for d in claimed:
        print(f"  claimed  {d.graph:8} {d.op:42} -> {d.implementation} {json.dumps(d.genome)}")
    for d in ours:
        print(f"  inductor {d.graph:8} {d.op:42} ({d.reason})")
    print(f"\ncheck vs eager: loss rel err {loss_err:.2e}, max grad rel err {grad_err:.2e} ({grad_where}): "
          f"{'OK' if ok else 'MISMATCH'}")
    print(f"train step (fwd+bwd), median: eager {times['eager']:.1f} us | inductor {times['inductor']:.1f} us | "
          f"kevolve {times['kevolve']:.1f} us  (kevolve vs inductor: {times['inductor'] / times['kevolve']:.2f}x)")
    if kernel_times:
        print(f"GPU kernel time per step: eager {kernel_times['eager']:.1f} us | inductor {kernel_times['inductor']:.1f} us"
              f" | kevolve {kernel_times['kevolve']:.1f} us  (vs inductor: "
              f"{kernel_times['inductor'] / kernel_times['kevolve']:.2f}x)")
    if save:
        out = save
        out.write_text(json.dumps({
            "benchmark": name, "device": DeviceInfo.of(dev).__dict__, "torch": torch.__version__,
            "triton": triton.__version__, "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv), "times_us": times, "kernel_us": kernel_times, "loss_rel_err": loss_err, "grad_rel_err": grad_err,
            "claimed": [{"graph": d.graph, "op": d.op, "implementation": d.implementation, "genome": d.genome,
                         "key": d.key} for d in claimed],
            "left": [{"graph": d.graph, "op": d.op, "reason": d.reason} for d in ours],
        }, indent=2) + "\n")
        print(f"wrote {out}")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(BENCHMARKS))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--warm", action="store_true", help="evolve the model's kernels into the user cache first")
    p.add_argument("--budget", type=parse_budget, default=300.0, help="with --warm: wall clock (default 5m)")
    p.add_argument("--evaluations", type=int, default=24, help="with --warm: evaluations per key (default %(default)s)")
    p.add_argument("--policy", default="uct", choices=("greedy", "uct", "islands"), help="with --warm")
    p.add_argument("--interpret", action="store_true", help="force Triton kernels (interpreted on CPU): tests the rewrite")
    p.add_argument("--save", type=Path, help="write the results as JSON here (e.g. benchmarks/results/NAME-DEVICE.json)")
    args = p.parse_args()
    logging.basicConfig(format="%(message)s", level=logging.WARNING)
    search = (SearchConfig(policy=args.policy, termination=Termination(max_evaluations=args.evaluations))
              if args.warm else None)
    return run(args.name, args.device, search, args.budget, args.interpret, args.save)


if __name__ == "__main__":
    sys.exit(main())
