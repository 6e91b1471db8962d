"""`kevolve report`: PNG plots of the searches (fitness over evaluations per key) and of the cached kernels'
achieved bandwidth against the roofline, plus their data as JSON."""
from __future__ import annotations

import json
from pathlib import Path

from .cache import KernelRecord
from .evolve.search import key_digest
from .evolve.search_graph import SearchGraph


def trajectories(graph: SearchGraph) -> dict[str, list[tuple[int, float, float]]]:
    """search id (the key digest, "-", the kernels' sources digest) -> (evaluation, fitness, best so far) for
    every search in the graph."""
    return {search: graph.trajectory(search) for search in graph.searches()}


def write_report(graph: SearchGraph, records: list[KernelRecord], out: Path) -> list[Path]:
    """Write trajectories.png, bandwidth.png and report.json under `out`; return the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    runs = trajectories(graph)
    labels = {r.key.digest: r.key.short() for r in records}
    fig, ax = plt.subplots(figsize=(9, 5))
    for search, points in runs.items():
        label = labels.get(key_digest(search), search)
        ax.step([p[0] for p in points], [p[2] for p in points], where="post", label=label[:60])
        ax.scatter([p[0] for p in points], [p[1] for p in points], s=6, alpha=0.4)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set(xlabel="evaluation", ylabel="fitness (Inductor time / kernel time)", title="search trajectories")
    if runs:
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "trajectories.png", dpi=120)
    plt.close(fig)

    measured = [r for r in records if r.achieved_gbps]
    fig, ax = plt.subplots(figsize=(9, max(3, 0.3 * len(measured) + 1)))
    ax.barh(range(len(measured)), [r.achieved_gbps for r in measured], color="tab:blue")
    ax.set_yticks(range(len(measured)), [r.key.short()[:70] for r in measured], fontsize=6)
    ax.set(xlabel="achieved GB/s (roofline bytes / kernel time)", title="cached kernels")
    fig.tight_layout()
    fig.savefig(out / "bandwidth.png", dpi=120)
    plt.close(fig)

    data = {"trajectories": {s: [list(p) for p in pts] for s, pts in runs.items()},
            "kernels": [{"key": r.key.short(), "digest": r.key.digest, "fitness": r.fitness,
                         "t_ref_us": r.t_ref_us, "t_cand_us": r.t_cand_us, "achieved_gbps": r.achieved_gbps}
                        for r in records]}
    (out / "report.json").write_text(json.dumps(data, indent=1) + "\n")
    return [out / "trajectories.png", out / "bandwidth.png", out / "report.json"]
