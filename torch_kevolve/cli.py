"""`kevolve`: explain, tune and cache commands."""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import logging
import os
import sys
from pathlib import Path

import torch


def load_factory(spec: str):
    """Resolve MODULE:FACTORY (modules of the current directory importable, as with `python -m`)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SystemExit(f"kevolve: expected MODULE:FACTORY, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise SystemExit(f"kevolve: cannot load {spec}: {e}")
    return factory


def build_model(spec: str, device: str):
    """Call the factory with the device; it must return (model, inputs)."""
    factory = load_factory(spec)
    takes_device = "device" in inspect.signature(factory).parameters
    model, inputs = factory(device=device) if takes_device else factory()
    return model, tuple(inputs)


def _options(args) -> dict:
    options = json.loads(args.options) if args.options else {}
    if args.cache_dir:
        options["cache_dir"] = args.cache_dir
    return options


def cmd_explain(args) -> int:
    from .backend.explain import explain

    model, inputs = build_model(args.model, args.device)
    decisions = explain(model, inputs, _options(args))
    claimed = [d for d in decisions if d.claimed]
    ours = [d for d in decisions if d.family and not d.claimed]
    print(f"{len(decisions)} ATen nodes; {len(claimed)} claimed by kevolve; "
          f"{len(ours)} more a kevolve family implements; {len(decisions) - len(claimed) - len(ours)} not ours\n")
    for d in decisions:
        if d.claimed:
            print(f"  CLAIMED  {d.graph:8} {d.node:28} {d.op}\n           key {d.key}\n"
                  f"           -> {d.implementation} {json.dumps(d.genome)} ({d.reason})")
    for d in decisions:
        if d.family and not d.claimed:
            print(f"  INDUCTOR {d.graph:8} {d.node:28} {d.op}  [{d.family}]\n"
                  f"           key {d.key}\n           why: {d.reason}")
    others: dict[str, int] = {}
    for d in decisions:
        if not d.family:
            others[d.op] = others.get(d.op, 0) + 1
    if others:
        print("\n  left to Inductor, no kevolve family implements them:")
        for op, n in sorted(others.items()):
            print(f"    {op} x{n}")
    return 0


def cmd_tune(args) -> int:
    from .warm import warm

    model, inputs = build_model(args.model, args.device)
    records = warm(model, inputs, torch.device(args.device), _options(args), limit=args.limit,
                   retune=args.retune)
    if not records:
        print("kevolve tune: no node of this model got a measured kernel")
    return 0


def cmd_cache(args) -> int:
    from .backend.options import KevolveOptions
    from .cache import ShippedStore, UserStore, export_records

    opts = KevolveOptions.from_user({"cache_dir": args.cache_dir} if args.cache_dir else {})
    store = UserStore(opts.cache_dir)
    if args.action == "list":
        sources = [("user", store.records())] + ([("shipped", ShippedStore().records())] if args.shipped else [])
        for origin, records in sources:
            print(f"{origin} cache ({store.path if origin == 'user' else 'package'}): {len(records)} records")
            for r in records:
                print(f"  {r.key.digest}  fitness {r.fitness:5.2f}  {r.implementation:24} {r.key.short()}")
        return 0
    if args.action == "show":
        matches = [r for r in store.records() + ShippedStore().records() if r.key.digest.startswith(args.key)]
        if not matches:
            print(f"kevolve cache show: no record whose key starts with {args.key!r}", file=sys.stderr)
            return 1
        for r in matches:
            d = r.to_dict()
            d["source"] = f"<{len(r.source)} characters, sha256 {r.source_sha256}>"
            print(json.dumps(d, indent=2))
        return 0
    if args.action == "purge":
        if not args.all and not args.family:
            print("kevolve cache purge: give --family NAME or --all", file=sys.stderr)
            return 2
        if args.all:
            store.delete()
            print(f"deleted {store.path}")
        else:
            print(f"removed {store.purge(family=args.family)} records of family {args.family}")
        return 0
    if args.action == "export":
        records = [r for r in store.records() if r.fitness > 1]
        export_records(records, Path(args.file))
        print(f"wrote {len(records)} winning records to {args.file}")
        return 0
    raise AssertionError(args.action)


def cmd_coverage(args) -> int:
    from .coverage import json_report, markdown_table, run_coverage
    from .families import FAMILIES

    names = {f.name for f in FAMILIES}
    unknown = set(args.family or ()) - names
    if unknown:
        print(f"kevolve coverage: no family {sorted(unknown)}; families: {sorted(names)}", file=sys.stderr)
        return 2
    families = [f for f in FAMILIES if not args.family or f.name in args.family]
    progress = (lambda line: print(line, file=sys.stderr)) if args.verbose else None
    results = run_coverage(families, args.device, limit=args.limit, progress=progress)
    if args.format == "json":
        print(json.dumps(json_report(results, args.device), indent=1))
    else:
        print(markdown_table(results, args.device, "kevolve " + " ".join(args.argv)), end="")
    return 1 if any(r.failed for r in results) else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kevolve", description="torch_kevolve: evolved kernels behind torch.compile")
    p.add_argument("-v", "--verbose", action="store_true", help="log every decision")
    sub = p.add_subparsers(dest="command", required=True)

    def model_command(name: str, help: str):
        s = sub.add_parser(name, help=help)
        s.add_argument("model", metavar="MODULE:FACTORY", help="factory(device) returning (model, inputs)")
        s.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        s.add_argument("--cache-dir", help="user kernel cache (default $KEVOLVE_CACHE_DIR or ~/.cache/torch_kevolve)")
        s.add_argument("--options", help="backend options as JSON, e.g. '{\"interpret\": true}'")
        return s

    model_command("explain", "which nodes kevolve claims for a model, and why the others are left to Inductor") \
        .set_defaults(fn=cmd_explain)
    tune = model_command("tune", "measure kernel variants for a model's nodes and store the best in the cache")
    tune.add_argument("--limit", type=int, help="at most this many variants per implementation (default: all)")
    tune.add_argument("--retune", action="store_true", help="tune keys the cache already holds too")
    tune.set_defaults(fn=cmd_tune)

    cov = sub.add_parser("coverage", help="check every claimed ATen overload on OpInfo samples and random inputs")
    cov.add_argument("--device", default="cpu", help="cpu (Triton interpreter) or cuda")
    cov.add_argument("--format", choices=("md", "json"), default="md")
    cov.add_argument("--family", action="append", help="only this family (repeatable)")
    cov.add_argument("--limit", type=int, help="at most N OpInfo and N random samples per overload (default: all)")
    cov.set_defaults(fn=cmd_coverage)

    c = sub.add_parser("cache", help="inspect or purge the kernel cache")
    c.add_argument("--cache-dir")
    csub = c.add_subparsers(dest="action", required=True)
    ls = csub.add_parser("list")
    ls.add_argument("--shipped", action="store_true", help="also list the shipped cache")
    csub.add_parser("show").add_argument("key", help="key digest (prefix), as printed by list")
    pg = csub.add_parser("purge")
    pg.add_argument("--family")
    pg.add_argument("--all", action="store_true")
    csub.add_parser("export").add_argument("file", help="JSON file of the winners, for kernel_cache/")
    c.set_defaults(fn=cmd_cache)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    logging.basicConfig(format="%(message)s", level=logging.DEBUG if args.verbose else logging.WARNING)
    logging.getLogger("torch._inductor").setLevel(logging.WARNING)
    from .cache import CacheError

    try:
        return args.fn(args)
    except CacheError as e:
        print(f"kevolve: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
