"""The results of one model benchmark as JSON and as a markdown table (same name, .md)."""
from __future__ import annotations

import dataclasses
import datetime
import json
import platform
import sys
from collections import Counter
from pathlib import Path

import torch
import triton

from torch_kevolve.backend.decisions import NodeDecision
from torch_kevolve.key import DeviceInfo

from .harness import Result, Tolerance

PHASES = ("train", "forward")


def speedups(results: list[Result]) -> dict[str, dict[str, float]]:
    """contender -> {"<phase>_wall" / "<phase>_kernel": Inductor's time / the contender's}."""
    inductor = next((r for r in results if r.name == "inductor"), None)
    out: dict[str, dict[str, float]] = {}
    for r in results:
        out[r.name] = {}
        for phase, p in r.phases.items():
            base = inductor.phases.get(phase) if inductor else None
            if base is None:
                continue
            out[r.name][f"{phase}_wall"] = base.wall_us / p.wall_us
            if p.kernel_us and base.kernel_us:
                out[r.name][f"{phase}_kernel"] = base.kernel_us / p.kernel_us
    return out


def summary(name: str, device: torch.device, results: list[Result], decisions: list[NodeDecision],
            tolerance: Tolerance, ok: bool, warm: dict | None, families: tuple[str, ...] | None = None,
            reference: str = "eager") -> dict:
    """Everything a run measured, JSON-ready (`families`: those kevolve was restricted to, None for all;
    `reference`: what the errors are measured against, "eager" or "float64")."""
    claimed = [d for d in decisions if d.claimed]
    return {
        "benchmark": name,
        "device": dataclasses.asdict(DeviceInfo.of(device)),
        "versions": {"torch": torch.__version__, "triton": triton.__version__, "python": platform.python_version()},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "warm": warm,
        "families": None if families is None else list(families),
        "contenders": {r.name: {
            "phases": {phase: dataclasses.asdict(p) for phase, p in r.phases.items()},
            "loss_rel_err": r.loss_rel_err, "grad_rel_err": r.grad_rel_err, "grad_where": r.grad_where,
            **({} if r.graphs_compiled is None else {"graphs_compiled": r.graphs_compiled}),
        } for r in results},
        "speedup_vs_inductor": speedups(results),
        "reference": reference,
        "tolerance": dataclasses.asdict(tolerance),
        "ok": ok,
        "nodes": len(decisions),  # every call the pass was offered: ATen nodes, and epilogue patterns first
        "claimed": [{"graph": d.graph, "op": d.op, "implementation": d.implementation, "genome": d.genome,
                     "key": d.key} for d in claimed],
        "left": [{"graph": d.graph, "op": d.op, "reason": d.reason} for d in decisions if d.family and not d.claimed],
    }


def _num(x: float | None, fmt: str = ".1f", unit: str = "") -> str:
    return "-" if x is None else format(x, fmt) + unit


def markdown(report: dict) -> str:
    """A table of times, speedups, memory, compile times and errors per contender, and the claimed nodes."""
    dev, v = report["device"], report["versions"]
    lines = [f"# {report['benchmark']} on {dev['name']} {dev['capability']}".rstrip(), "",
             f"torch {v['torch']}, triton {v['triton']}, python {v['python']}; {report['date']}; "
             f"`{report['command']}`", "",
             "Times per step in us: wall median / GPU kernel time; speedup = Inductor's time / the contender's "
             "(wall / kernel); peak = most memory one step holds above what was allocated before it; "
             "first call = compile time with cold caches / with warm on-disk caches (- where not measured).", ""]
    phases = [p for p in PHASES if any(p in c["phases"] for c in report["contenders"].values())]
    head = ["contender"]
    for p in phases:
        head += [f"{p} us", f"{p} vs Inductor", f"{p} peak MiB", f"{p} first call s, cold / warm"]
    head += ["loss err", "grad err"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, c in report["contenders"].items():
        s = report["speedup_vs_inductor"].get(name, {})
        row = [name]
        for p in phases:
            ph = c["phases"][p]
            row += [f"{_num(ph['wall_us'])} / {_num(ph['kernel_us'])}",
                    f"{_num(s.get(f'{p}_wall'), '.2f', 'x')} / {_num(s.get(f'{p}_kernel'), '.2f', 'x')}",
                    _num(ph["peak_mib"]),
                    f"{_num(ph['first_call_s'], '.2f')} / {_num(ph.get('warm_call_s'), '.2f')}"]
        row += [_num(c["loss_rel_err"], ".1e"), _num(c["grad_rel_err"], ".1e")]
        lines.append("| " + " | ".join(row) + " |")
    compiled = {name: c["graphs_compiled"] for name, c in report["contenders"].items() if "graphs_compiled" in c}
    if compiled:
        lines += ["", "Graphs Dynamo compiled: " + ", ".join(f"{name} {n}" for name, n in compiled.items()) + "."]
    tol = report["tolerance"]
    lines += ["", f"kevolve vs {report['reference']}: {'OK' if report['ok'] else 'MISMATCH'} "
              f"(tolerance: loss {tol['loss']:.0e}, grad {tol['grad']:.0e}). kevolve claimed {len(report['claimed'])} of the {report['nodes']} calls it "
              f"was offered (ATen nodes and epilogue patterns)"
              + (":" if report["claimed"] else "."), ""]
    counts = Counter((d["graph"], d["op"], d["implementation"]) for d in report["claimed"])
    lines += [f"- {n} x {graph} `{op}` -> {impl}" for (graph, op, impl), n in sorted(counts.items())]
    return "\n".join(lines + _top_kernels(report)) + "\n"


def _top_kernels(report: dict, shown: int = 6) -> list[str]:
    """Lines naming each contender's longest GPU kernels per phase (where the profiler recorded them), with the
    launches per step of those launched more than once."""
    lines = []
    for name, c in report["contenders"].items():
        for phase, ph in c["phases"].items():
            if ph["top_kernels"]:
                launches = ph.get("top_kernel_launches") or {}
                kernels = list(ph["top_kernels"].items())[:shown]
                lines.append(f"- {name} {phase}: " + ", ".join(
                    f"{us:.0f} us `{k[:60]}`" + (f" x{launches[k]:g}" if launches.get(k, 1) != 1 else "")
                    for k, us in kernels))
    return ["", "Longest GPU kernels per step:", ""] + lines if lines else []


def save(report: dict, path: Path) -> Path:
    """Write `report` as JSON to `path` and as markdown beside it; return the markdown's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    md = path.with_suffix(".md")
    md.write_text(markdown(report))
    return md


def publish(report: dict, path: Path | None) -> None:
    """Print `report` as markdown, and save it to `path` (JSON, markdown beside it) if given."""
    print("\n" + markdown(report))
    if path:
        print(f"wrote {path} and {save(report, path)}")
