"""`kevolve`: explain, tune and cache commands."""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import logging
import os
import re
import sys
from pathlib import Path

import torch

from .evolve.evaluator import EvaluatorConfig


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
    options = json.loads(args.options) if getattr(args, "options", None) else {}
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
                   retune=args.retune, evaluator=EvaluatorConfig(device=args.device, timeout_s=args.timeout),
                   check_model=args.check_model)
    if not records:
        print("kevolve tune: no node of this model got a measured kernel")
    return 0


def parse_budget(text: str) -> float:
    """Seconds in '90s', '5m', '1.5h' or a plain number of seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        return float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"budget {text!r}: expected seconds, or a number with s, m or h") from None


def _search_config(args):
    from .evolve.search import SearchConfig
    from .evolve.termination import Termination

    return SearchConfig(policy=args.policy, seed=args.seed, c=args.c,
                        termination=Termination(max_evaluations=args.evaluations, plateau=args.plateau,
                                                target_fitness=args.target, roofline=args.roofline))


def cmd_warm(args) -> int:
    from .warm import warm

    model, inputs = build_model(args.model, args.device)
    warm(model, inputs, torch.device(args.device), _options(args), retune=args.retune, verbose=args.verbose_search,
         evaluator=EvaluatorConfig(device=args.device, timeout_s=args.timeout), search=_search_config(args),
         budget_s=args.budget, workers=args.workers, ray_address=args.ray_address, check_model=args.check_model)
    return 0


def cmd_evolve(args) -> int:
    from .backend.options import KevolveOptions
    from .cache import UserStore
    from .evolve.pool import make_pool
    from .evolve.search_graph import SearchGraph
    from .evolve.shape_spec import apply_spec
    from .families import family_for
    from .warm import evolve_key, store_record, summary_table

    namespace, _, rest = args.op.partition(".")
    name, _, overload_name = rest.partition(".")
    overload = getattr(getattr(getattr(torch.ops, namespace, None), name, None), overload_name or "default", None)
    family = family_for(overload) if overload is not None else None
    if family is None:
        print(f"kevolve evolve: no kevolve family implements {args.op!r}", file=sys.stderr)
        return 2
    try:
        examples = family.example_problems(overload)
        if not examples:
            raise ValueError(f"family {family.name} gives no example problem to edit; evolve its keys with "
                             "`kevolve warm MODULE:FACTORY` instead")
        problem = apply_spec(examples[0], args.shape_spec or "")
    except ValueError as e:
        print(f"kevolve evolve: {e}", file=sys.stderr)
        return 2
    opts = KevolveOptions.from_user(_options(args))
    store = UserStore(opts.cache_dir)
    graph = SearchGraph(Path(opts.cache_dir) / "search.sqlite")
    with make_pool(EvaluatorConfig(device=args.device, timeout_s=args.timeout), args.workers,
                   args.ray_address) as pool:
        record, summary = evolve_key(family, problem, pool, graph, _search_config(args), args.budget, store,
                                     torch.device(args.device), True, print)
    graph.close()
    if record is not None:
        store_record(record, store, print)
    print(summary_table([(args.op, record, summary)]))
    return 0 if record is not None else 1


def cmd_report(args) -> int:
    from .backend.options import KevolveOptions
    from .cache import UserStore
    from .evolve.search_graph import SearchGraph
    from .report import write_report

    opts = KevolveOptions.from_user({"cache_dir": args.cache_dir} if args.cache_dir else {})
    graph = SearchGraph(Path(opts.cache_dir) / "search.sqlite")
    for path in write_report(graph, UserStore(opts.cache_dir).records(), Path(args.out)):
        print(f"wrote {path}")
    graph.close()
    return 0


def cmd_cache(args) -> int:
    from .backend.options import KevolveOptions
    from .cache import CacheError, ShippedStore, UserStore, export_records

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
    if args.action == "import":
        from .cache_import import import_records
        from .evolve.evaluator import Evaluator

        print(f"checking the records of {args.file} on {args.device}")
        with Evaluator(EvaluatorConfig(device=args.device)) as judge:
            imported, refused = import_records(Path(args.file), store, judge, print)
        print(f"imported {imported} records, refused {refused}")
        return 0 if not refused else 1
    if args.action == "remeasure":
        from .cache_remeasure import remeasure_records
        from .evolve.evaluator import Evaluator

        print(f"measuring the records of {args.file} again on {args.device}")
        with Evaluator(EvaluatorConfig(device=args.device)) as judge:
            measured = remeasure_records(Path(args.file), store, judge, print, args.keys)
        fresh = [r for r in measured if r is not None]
        if args.out:
            export_records(fresh, Path(args.out))
        written = f" (and wrote them to {args.out})" if args.out else ""
        failed = len(measured) - len(fresh)
        print(f"stored {len(fresh)} records measured again{written}, {failed} failed")
        return 0 if not failed else 1
    if args.action == "export":
        records = [r for r in store.records() if r.wins]
        export_records(records, Path(args.file))
        print(f"wrote {len(records)} winning records to {args.file}")
        return 0
    if args.action == "ship":
        from .cache_ship import ship

        try:
            held = ship([Path(f) for f in args.files], Path(args.into), print, args.replace)
        except CacheError as e:
            print(f"kevolve cache ship: nothing written: {e}", file=sys.stderr)
            return 1
        print(f"wrote {held} records to {args.into}; rebuild its retrieval index: kevolve index build-shipped")
        return 0
    if args.action == "near":
        return _print_neighbours(store, args.key, args.k)
    raise AssertionError(args.action)


def _print_neighbours(store, digest: str, k: int) -> int:
    from .cache import ShippedStore
    from .neighbours import cache_index

    shipped = ShippedStore()
    records = {r.key.id: r for r in shipped.records() + store.records()}
    matches = [r for r in records.values() if r.key.digest.startswith(digest)]
    if len(matches) != 1:
        print(f"kevolve cache near: {len(matches)} records whose key starts with {digest!r}; give one", file=sys.stderr)
        return 1
    index = cache_index(store, shipped)
    print(f"neighbours of {matches[0].key.digest}  {matches[0].key.short()}")
    for n in index.nearest(matches[0].key, k=k, exclude_self=True):
        r = records[n.key.id]
        print(f"  distance {n.distance:.4f}  {n.key.digest}  fitness {r.fitness:5.2f}  {r.implementation:24} "
              f"{json.dumps(r.genome)}\n      {n.key.short()}")
    return 0


def cmd_index(args) -> int:
    from .cache import ShippedStore
    from .neighbours import SHIPPED_INDEX_DIR, key_index
    from .retrieval import build_table
    from .retrieval.op_embeddings import SHIPPED_TABLE

    if args.action == "build-ops":
        path = Path(args.out) if args.out else SHIPPED_TABLE
        print(f"wrote text embeddings of {build_table(path)} ATen overloads to {path}")
        return 0
    if args.action == "build-knowledge":
        from .evolve.diagnosis import FINDINGS
        from .evolve.knowledge import KnowledgeBase
        from .retrieval.knowledge_index import KNOWLEDGE_TABLE, build_knowledge_table

        path = Path(args.out) if args.out else KNOWLEDGE_TABLE
        count = build_knowledge_table({e.name: e.matching_text for e in KnowledgeBase().entries}, FINDINGS, path)
        print(f"wrote embeddings of {count} knowledge entries and {len(FINDINGS)} diagnosis phrases to {path}")
        return 0
    if args.action == "build-shipped":
        directory = Path(args.out) if args.out else SHIPPED_INDEX_DIR
        for name in ("keys.faiss", "keys.json"):
            (directory / name).unlink(missing_ok=True)
        index = key_index(directory, ShippedStore().records())
        print(f"wrote the retrieval index of the shipped cache ({len(index)} keys) to {directory}")
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

    def add_check_model(s):
        s.add_argument("--check-model", action="store_true",
                       help="time the model with and without the new records; discard those that slow its step")

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
    tune.add_argument("--timeout", type=float, default=EvaluatorConfig.timeout_s,
                      help="seconds one variant may take (build, compile, check, time) before its worker is killed "
                           "(default %(default)s)")
    add_check_model(tune)
    tune.set_defaults(fn=cmd_tune)

    def search_options(s):
        s.add_argument("--policy", choices=("greedy", "uct", "islands"), default="uct")
        s.add_argument("--budget", type=parse_budget, help="wall clock for the whole run: 90s, 5m, 1h (default: none)")
        s.add_argument("--evaluations", type=int, default=64, help="evaluations per key (default %(default)s)")
        s.add_argument("--plateau", type=int, help="stop a key after this many evaluations without improvement")
        s.add_argument("--target", type=float, help="stop a key at this fitness")
        s.add_argument("--roofline", type=float, default=0.9,
                       help="stop a key at this fraction of the measured copy bandwidth (default %(default)s)")
        s.add_argument("--c", type=float, default=0.3, help="UCT exploration constant (default %(default)s)")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--timeout", type=float, default=EvaluatorConfig.timeout_s,
                       help="seconds one variant may take before its worker is killed (default %(default)s)")
        s.add_argument("--workers", type=int, help="candidates evaluated at once (default: one per GPU, of this "
                                                   "machine or of the Ray cluster; on the CPU 1, or one per "
                                                   "cluster CPU)")
        s.add_argument("--ray-address", help="evaluate on this Ray cluster (e.g. auto, or ray://HOST:10001), one "
                                             "actor per worker; without it, or without Ray, a local pool")
        return s

    warm = search_options(model_command("warm", "evolve kernels for every node a family claims in a model"))
    warm.add_argument("--retune", action="store_true", help="evolve keys the cache already holds too")
    warm.add_argument("--verbose-search", action="store_true", help="print every evaluation")
    add_check_model(warm)
    warm.set_defaults(fn=cmd_warm)

    evolve = search_options(sub.add_parser("evolve", help="evolve kernels for one operator and shape"))
    evolve.add_argument("--op", required=True, help="ATen overload, e.g. aten._embedding_bag.default")
    evolve.add_argument("--shape-spec", help="name=value,... over the family's example problem, e.g. "
                                             "'num_weights=1000000,dim=128,num_indices=262144,num_bags=8192'")
    evolve.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    evolve.add_argument("--cache-dir")
    evolve.set_defaults(fn=cmd_evolve)

    report = sub.add_parser("report", help="plot the searches' trajectories and the cached kernels' bandwidth")
    report.add_argument("--cache-dir")
    report.add_argument("--out", default="kevolve-report", help="directory for the PNGs and JSON (default %(default)s)")
    report.set_defaults(fn=cmd_report)

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
    imp = csub.add_parser("import", help="check records from another machine (hash, versions, device, a "
                                         "correctness run) and add those that pass to the user cache")
    imp.add_argument("file", help="JSON file in the shipped format (as written by export)")
    imp.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    rem = csub.add_parser("remeasure", help="measure the records of a shipped-format file again on this device with "
                                            "this checkout's sources (records a source change made stale) and "
                                            "store them in the user cache")
    rem.add_argument("file", help="JSON file in the shipped format, e.g. torch_kevolve/kernel_cache/"
                                  "h100-torch2.11-triton3.6.json")
    rem.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    rem.add_argument("--keys", type=re.compile, metavar="REGEX", help="only the records whose key text matches")
    rem.add_argument("--out", help="also write every record measured again here, win or not, for "
                                   "`cache ship --replace`")
    shp = csub.add_parser("ship", help="merge exported winners into a shipped kernel-cache file of the package, "
                                       "each checked against this checkout's kernels")
    shp.add_argument("files", nargs="+", help="JSON files in the shipped format (as written by export)")
    shp.add_argument("--replace", action="store_true", help="every record (a re-measure's, win or not) replaces its "
                                                            "key's: one no longer faster leaves its key to Inductor")
    shp.add_argument("--into", required=True, help="the shipped file, e.g. torch_kevolve/kernel_cache/"
                                                   "h200-torch2.11-triton3.6.json")
    near = csub.add_parser("near", help="the cached keys nearest to one (retrieval index), with distances")
    near.add_argument("key", help="key digest (prefix), as printed by list")
    near.add_argument("-k", type=int, default=5, help="how many neighbours")
    c.set_defaults(fn=cmd_cache)

    i = sub.add_parser("index", help="build the shipped retrieval data")
    isub = i.add_subparsers(dest="action", required=True)
    isub.add_parser("build-ops", help="embed every ATen overload's text (needs the embedding model)") \
        .add_argument("--out", help="default: the package's retrieval_index/op_embeddings.npz")
    isub.add_parser("build-knowledge", help="embed the knowledge entries and the diagnosis phrases (needs the model)") \
        .add_argument("--out", help="default: the package's retrieval_index/knowledge.npz")
    isub.add_parser("build-shipped", help="index the shipped kernel cache's keys") \
        .add_argument("--out", help="default: the package's retrieval_index/shipped_cache/")
    i.set_defaults(fn=cmd_index)
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
