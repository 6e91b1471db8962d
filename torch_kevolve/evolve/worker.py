"""The evaluation worker: `python -m torch_kevolve.evolve.worker`, started by the Evaluator, never by hand.

Protocol: one JSON object per line. stdin carries requests; the original stdout is kept for replies
only, and fd 1 is pointed at stderr, so whatever a candidate or a compiler prints cannot corrupt them.

    -> (on start)                                         <- {"ready": true, "pid": N}
    {"op": "prepare", "family", "problem", "device", "trials"}
                                                          <- {"prepared": {t_ref_us, floor_us, ..., seconds}} | {"error"}
    {"op": "evaluate", "candidate": {...}, "suspect_below"}  <- {"result": EvaluationResult} | {"error"}

A problem is prepared (trials, compiled reference, its time) once and judged against by every later
candidate on it, so reference and candidates are timed in the same process, the same way.
"""
from __future__ import annotations

import faulthandler
import json
import os
import sys
import threading
import time

import torch

from ..key import Problem
from .evaluation import Candidate, load_family
from .judging import Bench, describe, judge


def bench_key(family: str, problem: dict, device: str) -> str:
    """The identity of a prepared problem in a worker."""
    return json.dumps([family, problem, device], sort_keys=True)


def serve(requests, reply) -> None:
    """Answer each request line until the input ends."""
    benches: dict[str, Bench] = {}
    for line in requests:
        request = json.loads(line)
        try:
            if request["op"] == "prepare":
                started = time.perf_counter()
                bench = Bench.prepare(load_family(request["family"]), Problem.from_dict(request["problem"]),
                                      torch.device(request["device"]), request["trials"])
                benches[bench_key(request["family"], request["problem"], request["device"])] = bench
                reply({"prepared": {**bench.summary(), "seconds": time.perf_counter() - started}})
            elif request["op"] == "evaluate":
                candidate = Candidate.from_dict(request["candidate"])
                bench = benches[bench_key(candidate.family, request["candidate"]["problem"], request["device"])]
                impl = bench.family.implementation(candidate.implementation)
                reply({"result": judge(bench, impl, candidate.genome, request["suspect_below"]).to_dict()})
            else:
                reply({"error": f"unknown op {request['op']!r}"})
        except Exception as e:
            reply({"error": describe(e)})


def exit_with_parent(parent: int) -> None:
    """End this worker once its parent is gone, so a hung candidate cannot outlive the search."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def main() -> None:
    threading.Thread(target=exit_with_parent, args=(os.getppid(),), daemon=True).start()
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    faulthandler.enable()  # a crash leaves its Python stack in the stderr tail the parent reports

    def reply(message: dict) -> None:
        channel.write(json.dumps(message) + "\n")

    reply({"ready": True, "pid": os.getpid()})
    serve(sys.stdin, reply)


if __name__ == "__main__":
    main()
