"""Training on batches whose lengths vary, as a data loader hands them out: eager vs Inductor vs kevolve.

    python -m benchmarks.varying NAME [--device cuda] [--batches 6] [--interpret] [--save PATH.json]

`benchmarks.run` times one batch again and again, so every size stays static. Here each contender trains on
`batches` batches of differing lengths (DLRM: bags of 0..2*pooling rows; seq: jagged histories and category
lists; *_short_batch: one short batch, the rest full), so Dynamo compiles the graph a second time with symbolic
sizes, which every later batch runs (each contender starts from static sizes: Dynamo's profile of sizes that
varied before is not read). Recorded per contender: the graphs Dynamo compiled (kevolve must compile no more than
Inductor), each batch's loss and gradient errors against a float64 copy of the model on that batch (kevolve's
must stay within twice eager's and Inductor's own: eager's rounding can flip a ReLU that float64's does not), and
one training step's time, the median over steps that cycle through the batches (GPU kernel time too, on CUDA);
its "first call" is the first pass over the batches, both compiles included (caches as the process found them);
for kevolve, what it claimed on the graphs it compiled.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import itertools
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch._dynamo.utils as dynamo_utils

from torch_kevolve.evolve.timing import median_us

from . import report
from .device_time import kernel_us
from .harness import Contender, Phase, Reference, Result, max_grad_error, rel_err, train_step
from .models import dlrm, seq
from .run import FP32, contenders


@dataclass(frozen=True)
class VaryingModel:
    """A model on a device, and its batch number `seed` (batches differ in their lengths)."""

    build: Callable[[str], torch.nn.Module]
    batch: Callable[[str, int], tuple]


def _dlrm(cfg: dlrm.DLRMConfig) -> VaryingModel:
    cfg = dataclasses.replace(cfg, fixed_pooling=False)
    return VaryingModel(lambda device: dlrm.build(cfg, device)[0],
                        lambda device, seed: dlrm.make_inputs(cfg, device, seed))


def _short_second_batch(build: Callable, make_inputs: Callable, cfg) -> VaryingModel:
    """The model `build(cfg)` on batches `make_inputs(cfg)`, but the second holds about a quarter of the samples: a
    data loader's last batch of an epoch (drop_last=False), after which every batch runs the graph compiled for it."""
    short = dataclasses.replace(cfg, batch=cfg.batch // 4 + 3)
    return VaryingModel(lambda device: build(cfg, device)[0],
                        lambda device, seed: make_inputs(short if seed == 1 else cfg, device, seed))


def _seq(cfg: seq.SeqConfig) -> VaryingModel:
    return VaryingModel(lambda device: seq.build(cfg, device)[0], lambda device, seed: seq.make_inputs(cfg, device, seed))


MODELS = {"dlrm": _dlrm(dlrm.FULL), "dlrm_tiny": _dlrm(dlrm.TINY), "seq": _seq(seq.FULL), "seq_tiny": _seq(seq.TINY),
          "dlrm_short_batch": _short_second_batch(dlrm.build, dlrm.make_inputs, dlrm.FULL),
          "dlrm_short_batch_tiny": _short_second_batch(dlrm.build, dlrm.make_inputs, dlrm.TINY),
          "seq_short_batch": _short_second_batch(seq.build, seq.make_inputs, seq.FULL)}


def _cycling(run: Callable, batches: list[tuple]) -> Callable[[], object]:
    """A training step on the next batch, round and round."""
    turns = itertools.cycle(batches)
    return lambda: train_step(run, next(turns))


def measure(contender: Contender, base: torch.nn.Module, spec: VaryingModel, references: list[Reference],
            device: torch.device) -> Result:
    """Train a fresh copy of `base` compiled by `contender` once on each batch of `spec` that `references` has
    (checked against it: the largest errors are kept), then time steps cycling through them. The batches are
    made again for each contender: Dynamo marks the tensors it saw vary, and would start the next one dynamic."""
    batches = [spec.batch(str(device), seed) for seed in range(len(references))]
    torch._dynamo.reset()
    dynamo_utils.counters.clear()
    model = copy.deepcopy(base)
    run = contender.wrap(model)
    result = Result(contender.name, loss_rel_err=0.0, grad_rel_err=0.0)
    with contender.watch() as watched, torch._dynamo.config.patch(automatic_dynamic_local_pgo=False):
        start = time.perf_counter()
        for inputs, ref in zip(batches, references):
            loss = train_step(run, inputs).item()
            grad_err, where = max_grad_error(model, ref)
            result.loss_rel_err = max(result.loss_rel_err, rel_err(loss, ref.loss))
            if grad_err > result.grad_rel_err:
                result.grad_rel_err, result.grad_where = grad_err, where
        first_pass_s = time.perf_counter() - start
        result.graphs_compiled = dynamo_utils.counters["stats"]["unique_graphs"]
    step = _cycling(run, batches)
    result.phases["train"] = Phase(median_us(step, device), kernel_us(step) if device.type == "cuda" else None,
                                   None, first_pass_s)
    result.watched = watched
    torch._dynamo.reset()
    return result


def run(name: str, device: str, batches: int, options: dict, save: Path | None) -> int:
    """Measure, print (and save) the results; 0 if kevolve matches float64 on every batch and compiles no more
    graphs than Inductor."""
    dev = torch.device(device)
    spec = MODELS[name]
    base = spec.build(device)
    references = [Reference.float64(base, spec.batch(device, seed)) for seed in range(batches)]
    results = [measure(c, base, spec, references, dev) for c in contenders(options, max_autotune=False)]
    by_name = {r.name: r for r in results}
    kevolve = by_name["kevolve"]
    tolerance = FP32.at_least_twice(by_name["eager"], by_name["inductor"])
    ok = kevolve.within(tolerance) and kevolve.graphs_compiled <= by_name["inductor"].graphs_compiled
    summary = report.summary(f"{name} (sizes varying over {batches} batches)", dev, results, kevolve.watched,
                             tolerance, ok, None, options.get("families"), reference="float64")
    report.publish(summary, save)
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(MODELS))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batches", type=int, default=6, help="distinct batches (default %(default)s, at least 3)")
    p.add_argument("--interpret", action="store_true", help="force Triton kernels (interpreted on CPU): tests the rewrite")
    p.add_argument("--save", type=Path, help="write the results as JSON here, and as markdown beside it (.md)")
    args = p.parse_args()
    if args.batches < 3:
        p.error("--batches must be at least 3: the second compiles the graph of varying sizes, the third reuses it")
    logging.basicConfig(format="%(message)s", level=logging.WARNING)
    return run(args.name, args.device, args.batches, {"interpret": True} if args.interpret else {}, args.save)


if __name__ == "__main__":
    sys.exit(main())
