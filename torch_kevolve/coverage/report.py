"""Coverage results as a markdown table or JSON-ready summary."""
from __future__ import annotations

from typing import Sequence

import torch
import triton

from ..key import DeviceInfo
from .run import OverloadResult


def environment(device: str) -> str:
    """One line naming the device and the torch and Triton versions."""
    return f"{DeviceInfo.of(device).name}, torch {torch.__version__}, triton {triton.__version__}"


def json_report(results: Sequence[OverloadResult], device: str) -> dict:
    return {"environment": environment(device), "summary": summary(results), "overloads": [r.to_dict() for r in results]}


def summary(results: Sequence[OverloadResult]) -> dict:
    """Totals: overloads claimed and proven (some sample passed, none failed), per family, sample counts."""
    families: dict[str, int] = {}
    for r in results:
        families[r.family] = families.get(r.family, 0) + r.proven
    return {
        "overloads": len(results),
        "proven": sum(r.proven for r in results),
        "proven_by_family": families,
        "samples_passed": sum(r.passed for r in results),
        "samples_failed": sum(r.failed for r in results),
        "samples_not_claimed": sum(r.not_claimed for r in results),
    }


def markdown_table(results: Sequence[OverloadResult], device: str, command: str) -> str:
    """A markdown report: how it was made, the totals, then one row per overload."""
    s = summary(results)
    by_family = ", ".join(f"{name} {n}" for name, n in s["proven_by_family"].items())
    lines = [
        f"# Kernel coverage: {environment(device)}",
        "",
        f"Made by `{command}`: OpInfo samples traced to each claimed overload plus the family's random inputs,",
        "run through the family's default Triton kernel and compared with the float64 reference.",
        "",
        f"{s['proven']} of {s['overloads']} claimed overloads proven (some sample passed, none failed): {by_family}.",
        f"Samples: {s['samples_passed']} passed, {s['samples_failed']} failed, "
        f"{s['samples_not_claimed']} not claimed (left to Inductor).",
        "",
        "| overload | family | passed | failed | not claimed | dtypes |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(f"| `{r.overload}` | {r.family} | {r.passed} | {r.failed} | {r.not_claimed} | {', '.join(sorted(r.dtypes))} |")
    failures = [(r.overload, f) for r in results for f in r.failures]
    if failures:
        lines += ["", "## Failures", ""] + [f"- `{o}` {f}" for o, f in failures]
    return "\n".join(lines) + "\n"
