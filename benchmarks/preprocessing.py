"""Feature-preprocessing microbenchmark: eager vs Inductor vs kevolve for each module of
benchmarks.models.preprocessing at several batch sizes, each module in its own child process (CUDA only).

    python -m benchmarks.preprocessing OUT.json [--modules map_id,mbdt] [--batches 2048,65536] [--limit N]
                                                [--budget SECONDS]

Per module and batch: the keys of the preprocessing families (FAMILIES) the module poses are tuned (`kevolve tune`
path, at most --limit variants per implementation) into a temporary cache shared by the children, and
`torch.compile(backend="kevolve")` over that cache (kevolve restricted to those families) is checked exact against
eager and timed; then Inductor is, last, so that its failure (a device-side assert) costs only its own columns,
which the row then leaves None beside its error. Times: triton.testing.do_bench median (us), L2
flushed, and the GPU kernel time per call from the profiler (`kernel_us`; the wall time of these small modules is
mostly launch overhead), with each kernel's time and launches per call (`kernels`: what a contender launches, where
its wall time goes).

Modules are the outer loop, batch sizes the inner. Each module runs in a child process (this command with the
hidden `--child CACHE_DIR`, writing its runs as JSON to a temporary file) that gets the budget left; once --budget
seconds have passed, no new run starts and the remaining runs are listed as skipped. A run that raises is recorded
with its error; if it left the CUDA context unusable (a device-side assert), the module's remaining runs are listed
as skipped. A child that dies (a crash, a signal) has each run it did not report recorded as failed with the tail
of its stderr; the next module still runs. The JSON is rewritten after every module.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
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
from torch_kevolve.partial_files import partial_path
from torch_kevolve.warm import warm

from .child_process import run_to_end
from .device_time import kernel_profile
from .models.preprocessing import FACTORIES, make

BATCHES = (2048, 8192, 32768, 65536)
FAMILIES = ["bucketize", "map_id", "keep_last"]  # the families of the preprocessing ops
STDERR_TAIL = 2000  # characters of a dead child's stderr kept with each run it did not report


def same(got, want) -> bool:
    """Exactly equal outputs (a tensor or a tuple of tensors)."""
    if isinstance(want, tuple):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want))
    return got.dtype == want.dtype and torch.equal(got, want)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if numerator is None or denominator is None else numerator / denominator


def kernel_totals(launched: dict | None) -> dict | None:
    """Each contender's summed kernel time per call from its kernel_profile (None where it has none)."""
    if launched is None:
        return None
    return {contender: None if profile is None else sum(us for us, _ in profile.values())
            for contender, profile in launched.items()}


def bench(name: str, batch: int, device: torch.device, options: dict, limit: int) -> dict:
    """Wall and (on CUDA) GPU kernel times (us) of eager, Inductor and kevolve on one module and batch, with the
    claimed nodes and (on CUDA) each contender's kernels. Inductor runs last: where it fails (on torch 2.11 its
    kernel of batch event truncation trips an index assert, which loses the CUDA context), the row keeps eager's
    and kevolve's times, with Inductor's error and None for its times."""
    module, inputs = make(name, batch, device)
    with torch.no_grad():
        want = module(*inputs)
        torch._dynamo.reset()
        tuned = warm(module, inputs, device, options=options, limit=limit, verbose=False, say=lambda line: None)
        torch._dynamo.reset()
        kevolve = torch.compile(module, backend="kevolve", options=options)
        with collect_decisions() as decisions:
            correct = {"kevolve": same(kevolve(*inputs), want)}
        runs = {"eager": lambda: module(*inputs), "kevolve": lambda: kevolve(*inputs)}
        times = {contender: median_us(run, device) for contender, run in runs.items()}
        launched = {contender: kernel_profile(run) for contender, run in runs.items()} if device.type == "cuda" else None
        torch._dynamo.reset()
        inductor_error = None
        try:
            inductor = torch.compile(module)
            correct["inductor"] = same(inductor(*inputs), want)
            times["inductor"] = median_us(lambda: inductor(*inputs), device)
            if launched is not None:
                launched["inductor"] = kernel_profile(lambda: inductor(*inputs))
        except Exception as e:  # Inductor's own failure: the row still holds eager's and kevolve's times
            inductor_error = f"{type(e).__name__}: {e}"[:2000]
            times["inductor"] = None
            if launched is not None:
                launched["inductor"] = None
    kernels = kernel_totals(launched)
    return {
        "module": name, "batch": batch, "times_us": times, "kernel_us": kernels, "kernels": launched,
        "correct": correct,
        "inductor_error": inductor_error,
        "tuned": [{"key": r.key.short(), "implementation": r.implementation, "genome": r.genome,
                   "fitness": r.fitness} for r in tuned],
        "claimed": [f"{d.op} -> {d.implementation} {json.dumps(d.genome)}" for d in decisions if d.claimed],
        "left": [f"{d.op}: {d.reason}" for d in decisions if d.family and not d.claimed],
        "speedup_vs_eager": times["eager"] / times["kevolve"],
        "speedup_vs_inductor": _ratio(times["inductor"], times["kevolve"]),
        **({} if kernels is None else {"kernel_speedup_vs_eager": kernels["eager"] / kernels["kevolve"],
                                       "kernel_speedup_vs_inductor": _ratio(kernels["inductor"], kernels["kevolve"])}),
    }


def context_lost(device: torch.device) -> bool:
    """Whether the CUDA context is unusable (after a device-side assert, say)."""
    try:
        torch.cuda.synchronize(device)
        return False
    except Exception:  # any failure to synchronise means nothing more can run on this device
        return True


def print_result(r: dict) -> None:
    """Print a measured run's row of the table (Inductor's columns say "failed" where it failed)."""
    t, k = r["times_us"], r["kernel_us"]

    def shown(value: float | None, width: int, digits: int = 1) -> str:
        return f"{'failed':>{width}}" if value is None else f"{value:{width}.{digits}f}"

    print(f"{r['module']:22} {r['batch']:6} {t['eager']:9.1f} {shown(t['inductor'], 9)} {t['kevolve']:9.1f} "
          f"{r['speedup_vs_eager']:8.2f} {shown(r['speedup_vs_inductor'], 7, 2)} {k['eager']:16.1f} "
          f"{shown(k['inductor'], 9)} {k['kevolve']:8.1f} {all(r['correct'].values())!s:5} {len(r['claimed'])}",
          flush=True)
    if r.get("inductor_error"):
        print(f"{'':29} Inductor failed: {r['inductor_error'][:200]}", flush=True)


def print_failed(f: dict) -> None:
    """Print a failed run's row of the table."""
    print(f"{f['module']:22} {f['batch']:6} failed: {f['error'][:200]}", flush=True)


def run_here(modules: list[str], batches: list[int], device: torch.device, options: dict, limit: int,
             deadline: float, runs: dict, save) -> None:
    """Run every (module, batch) in this process, batch sizes outer, into `runs`, calling `save` after each run;
    after `deadline` (time.monotonic) or a lost CUDA context the rest are skipped."""
    lost = None
    for batch in batches:
        for name in modules:
            if lost or time.monotonic() > deadline:
                runs["skipped"].append({"module": name, "batch": batch,
                                        "why": f"the CUDA context was lost ({lost})" if lost else "time budget"})
                continue
            try:
                r = bench(name, batch, device, options, limit)
            except Exception as e:  # one module's failure is its row; the others still run
                runs["failed"].append({"module": name, "batch": batch, "error": f"{type(e).__name__}: {e}"[:2000]})
                print_failed(runs["failed"][-1])
                lost = f"{name} at batch {batch}" if context_lost(device) else None
                save()
                continue
            runs["results"].append(r)
            print_result(r)
            lost = f"Inductor's run of {name} at batch {batch}" if r.get("inductor_error") and context_lost(device) else None
            save()


def child_command(name: str, batches: list[int], limit: int, budget: float, cache_dir: str, out: Path) -> list[str]:
    """The command that runs module `name` at `batches` in a child process, tuning into `cache_dir` within `budget`
    seconds, and writes its runs as JSON to `out`."""
    return [sys.executable, "-m", "benchmarks.preprocessing", str(out), "--child", cache_dir, "--modules", name,
            "--batches", ",".join(map(str, batches)), "--limit", str(limit), "--budget", str(budget)]


def run_child(command: list[str]) -> tuple[int, str]:
    """Run `command` to its end (child_process.run_to_end), then pass its stderr on; its return code and the tail
    of its stderr."""
    code, _, text = run_to_end(command)
    sys.stderr.write(text)
    return code, text[-STDERR_TAIL:]


def run_children(modules: list[str], batches: list[int], limit: int, deadline: float, runs: dict, save,
                 command) -> None:
    """Run each module's batches in a child process made by `command` (child_command's arguments) into `runs`,
    calling `save` after each module; a child's unreported runs are failed with its stderr's tail, and after
    `deadline` (time.monotonic) the remaining modules are skipped."""
    cache_dir = tempfile.mkdtemp(prefix="kevolve-preprocessing-")
    for name in modules:
        left = deadline - time.monotonic()
        if left <= 0:
            runs["skipped"] += [{"module": name, "batch": batch, "why": "time budget"} for batch in batches]
            continue
        with tempfile.TemporaryDirectory(prefix="kevolve-preprocessing-child-") as tmp:
            out = Path(tmp) / "runs.json"
            code, tail = run_child(command(name, batches, limit, left, cache_dir, out))
            reported = json.loads(out.read_text()) if out.exists() else {}
        for kind, entries in runs.items():
            entries += reported.get(kind, [])
        done = {entry["batch"] for kind in runs for entry in reported.get(kind, [])}
        status = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        for batch in batches:
            if batch not in done:
                runs["failed"].append({"module": name, "batch": batch, "stderr": tail,
                                       "error": f"the child process {status} before reporting this run"})
                print_failed(runs["failed"][-1])
        save()


def main(argv=None, command=child_command) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="write the results as JSON here")
    p.add_argument("--modules", default=",".join(FACTORIES), help=f"comma-separated, of {', '.join(FACTORIES)}")
    p.add_argument("--batches", default=",".join(map(str, BATCHES)), help="comma-separated batch sizes")
    p.add_argument("--limit", type=int, default=3, help="variants tuned per implementation and key")
    p.add_argument("--budget", type=float, default=200, help="start no new run after this many seconds")
    p.add_argument("--child", metavar="CACHE_DIR", help=argparse.SUPPRESS)  # run here, tuning into CACHE_DIR
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks.preprocessing: needs a CUDA device; none here, skipped")
        return 0
    device = torch.device("cuda")
    modules, batches = args.modules.split(","), [int(b) for b in args.batches.split(",")]
    unknown = sorted(set(modules) - set(FACTORIES))
    if unknown:
        p.error(f"unknown modules {unknown}")
    runs, started = {"results": [], "failed": [], "skipped": []}, time.monotonic()

    def save() -> None:  # whole or not at all: the parent reads a child's file after the child, maybe crashed
        partial = partial_path(args.out)
        partial.write_text(json.dumps({
            "device": asdict(DeviceInfo.of(device)), "torch": torch.__version__, "triton": triton.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv), "limit": args.limit, "seconds": time.monotonic() - started, **runs},
            indent=2) + "\n")
        os.replace(partial, args.out)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    failed, skipped = runs["failed"], runs["skipped"]
    if args.child:
        options = {"cache_dir": args.child, "families": FAMILIES, "shipped_cache": False}
        run_here(modules, batches, device, options, args.limit, started + args.budget, runs, save)
        save()
    else:
        print(f"{'module':22} {'batch':>6} {'eager us':>9} {'inductor':>9} {'kevolve':>9} {'vs eager':>8} "
              f"{'vs ind':>7} {'kernel us: eager':>16} {'inductor':>9} {'kevolve':>8} exact claimed", flush=True)
        run_children(modules, batches, args.limit, started + args.budget, runs, save, command)
        save()
        print(f"wrote {args.out}" + (f"; {len(failed)} runs failed" if failed else "")
              + (f"; {len(skipped)} runs skipped" if skipped else ""))
    return 0 if not failed and all(all(r["correct"].values()) for r in runs["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
