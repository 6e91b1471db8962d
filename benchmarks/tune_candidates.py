"""A retune aimed at chosen kernels: for every key one family poses in a benchmark model, evaluate only the given
candidates (the Evaluator's fitness against the compiled reference) and store each key's fittest in the user
cache, over any record it held.

    python -m benchmarks.tune_candidates MODEL FAMILY IMPLEMENTATION=GENOME_JSON... [--device cuda] [--check-model]
                                         [--keys REGEX]

MODEL is a model benchmark (benchmarks.run BENCHMARKS) or a preprocessing module at a batch size, MODULE@BATCH
(benchmarks.models.preprocessing FACTORIES), e.g. `python -m benchmarks.tune_candidates dlrm embedding_bags_backward
'embedding_bags_backward_runs={"BLOCK_N": 8, "BLOCK_D": 128, "ITEMS_PER_PROGRAM": 4, "num_warps": 1,
"num_stages": 1}'` or
`python -m benchmarks.tune_candidates map_id@2048 map_id 'map_id_triton={"SEARCH": "kary", "BUCKET_BITS": 16,
"FANOUT": 8, "BLOCK": 512, "num_warps": 4}'`.
--keys tunes only the keys whose text matches REGEX (re.search), e.g. `addmm_relu|M=4096,N=512,K=1024`.
With --check-model the stored records are then checked in the model (model_check.keep_what_helps): a record the
model's step runs slower with is discarded again. Export the records afterwards with `kevolve cache export`, to
ship them.
"""
from __future__ import annotations

import argparse
import json
import re
import sys

import torch

from torch_kevolve.backend.options import KevolveOptions
from torch_kevolve.cache import UserStore
from torch_kevolve.evolve.evaluator import Evaluator, EvaluatorConfig
from torch_kevolve.evolve.tune import tune
from torch_kevolve.families import FAMILIES
from torch_kevolve.model_check import keep_what_helps
from torch_kevolve.warm import model_problems, print_evaluation, store_record

from .models import preprocessing
from .run import BENCHMARKS


def model_and_inputs(name: str, device: str) -> tuple[torch.nn.Module, tuple]:
    """The benchmark model `name`, or the preprocessing module of `MODULE@BATCH`, and its inputs on `device`;
    ValueError names what is unknown."""
    module, at, batch = name.partition("@")
    if not at:
        if name not in BENCHMARKS:
            raise ValueError(f"no model benchmark {name!r} (one of {', '.join(sorted(BENCHMARKS))}, or MODULE@BATCH)")
        return BENCHMARKS[name].factory(device)
    if module not in preprocessing.FACTORIES or not batch.isdigit():
        modules = ", ".join(sorted(preprocessing.FACTORIES))
        raise ValueError(f"{name!r} is not MODULE@BATCH with MODULE one of {modules}")
    return preprocessing.make(module, int(batch), device)


def chosen_genomes(texts: list[str]) -> dict[str, list[dict]]:
    """IMPLEMENTATION=GENOME_JSON texts -> genomes by implementation name; ValueError names a malformed one."""
    chosen: dict[str, list[dict]] = {}
    for text in texts:
        name, sep, genome = text.partition("=")
        try:
            parsed = json.loads(genome) if sep else None
        except json.JSONDecodeError as e:
            raise ValueError(f"{text!r}: the genome is not JSON ({e})") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"{text!r} is not IMPLEMENTATION={{genome as a JSON object}}")
        chosen.setdefault(name, []).append(parsed)
    return chosen


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a model benchmark, or MODULE@BATCH for a preprocessing module")
    p.add_argument("family", choices=sorted(f.name for f in FAMILIES))
    p.add_argument("candidates", nargs="+", metavar="IMPLEMENTATION=GENOME_JSON")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--check-model", action="store_true",
                   help="time the model with and without the stored records; discard those that slow its step")
    p.add_argument("--keys", type=re.compile, default=re.compile(""), metavar="REGEX",
                   help="tune only the keys whose text matches REGEX")
    args = p.parse_args(argv)
    family = next(f for f in FAMILIES if f.name == args.family)
    try:
        chosen = chosen_genomes(args.candidates)
        model, inputs = model_and_inputs(args.model, args.device)
    except ValueError as e:
        p.error(str(e))
    unknown = set(chosen) - {impl.name for impl in family.implementations}
    if unknown:
        p.error(f"{args.family} has no implementation {', '.join(sorted(unknown))}")
    posed = model_problems(model, inputs, {"families": [args.family]})
    problems = {key_text: problem for key_text, problem in posed.items() if args.keys.search(key_text)}
    if not problems:
        print(f"{args.model} poses no key of {args.family} that matches {args.keys.pattern!r}")
        return 1
    store = UserStore(KevolveOptions.from_user({}).cache_dir)
    stored = []
    with Evaluator(EvaluatorConfig(device=args.device)) as evaluator:
        for key_text, (_, problem) in problems.items():
            print(f"tuning {key_text}", flush=True)
            record, _ = tune(family, problem, evaluator, progress=print_evaluation, chosen=chosen)
            if record is None:
                print("  no candidate ran correctly and was timed; nothing stored")
                continue
            store_record(record, store, print, replace=True)
            stored.append(record)
    if args.check_model:
        stored = keep_what_helps(model, inputs, torch.device(args.device), stored, store)
    return 0 if stored else 1


if __name__ == "__main__":
    sys.exit(main())
