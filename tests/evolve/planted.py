"""A tiny kernel family (row sums of a matrix, `aten.sum.dim_IntList` over dim 1) whose candidates
(planted_kernels.py) are planted: each named in EXPECTED cheats or fails in one way, and the evaluator
must score it 0 with that status (on CUDA the interpreted ones are compiled and timed, and the
out-of-bounds read is an illegal memory access). `row_sum_decomposition` and `row_sum_triton` are correct.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from torch_kevolve.evolve.evaluation import Candidate
from torch_kevolve.evolve.evaluator import Evaluator, EvaluatorConfig
from torch_kevolve.families.base import KernelFamily, Unsupported
from torch_kevolve.key import Problem

from .planted_kernels import IMPLEMENTATIONS, TRITON

# planted implementation -> the status the evaluator must give it on CPU
EXPECTED = {
    "row_sum_decomposition": "ok",
    "row_sum_triton": "unmeasured",
    "compile_error": "compile_error",
    "wrong": "wrong",
    "partial_write": "partial_write",
    "nan": "nan",
    "infinite_loop": "timeout",
    "result_reuse": "stale",
    "mutates_input": "mutated_input",
    "raises": "error",
    "out_of_bounds": "crash",
    "memo_by_input": "suspect",
    "side_stream": "refused",
}


def row_sum_problem(rows: int, cols: int, dtype: str = "float32") -> Problem:
    return Problem("row_sum", str(torch.ops.aten.sum.dim_IntList), (), (("rows", rows), ("cols", cols)),
                   (("x", dtype),))


@dataclass
class RowSumFamily(KernelFamily):
    """out[r] = sum of x[r, :]; inputs drawn from each distribution (edge: zeros with a few large entries)."""

    def problem(self, overload, args, kwargs):
        raise Unsupported("the planted family claims no graph node")

    def make_inputs(self, problem, seed, dist, device):
        g = torch.Generator().manual_seed(seed)
        shape = (problem.dim("rows"), problem.dim("cols"))
        if dist == "uniform":
            x = torch.rand(shape, generator=g) * 2 - 1
        elif dist == "large":
            x = (torch.rand(shape, generator=g) * 2 - 1) * 1e4
        elif dist == "edge":
            x = torch.zeros(shape)
            x.view(-1)[torch.randint(0, x.numel(), (4,), generator=g)] = 1e3
        else:
            x = torch.randn(shape, generator=g)
        return (x.to(device, problem.dtype("x")), [1])

    def reference(self, problem, args):
        return (args[0].detach().cpu().double().sum(1),)

    def checked_outputs(self, problem):
        return (0,)

    def reduced_extent(self, problem, args):
        return problem.dim("cols")

    def bytes_moved(self, problem):
        rows, cols = problem.dim("rows"), problem.dim("cols")
        return (rows * cols + rows) * problem.dtype("x").itemsize


PLANTED = RowSumFamily(name="row_sum", version="1", overloads=(torch.ops.aten.sum.dim_IntList,),
                       implementations=IMPLEMENTATIONS)
SPEC = f"{__name__}:PLANTED"


# On CUDA the Triton candidates are compiled and timed too.
EXPECTED_CUDA = {**EXPECTED, "row_sum_triton": "ok"}
LOOPING = "infinite_loop"


def evaluate_planted(config: EvaluatorConfig, triton_problem: Problem, timed_problem: Problem,
                     loop_timeout_s: float) -> dict[str, dict]:
    """Judge every planted candidate with one evaluator (Triton ones on `triton_problem`, decompositions on
    `timed_problem`), then the infinite loop with its own evaluator of timeout `loop_timeout_s`.

    name -> {"result": EvaluationResult, "worker_before": pid or None, "worker_after": pid or None}.
    """
    table = {}

    def judge(evaluator: Evaluator, impl) -> None:
        problem = triton_problem if impl.abstraction is TRITON else timed_problem
        before = evaluator.worker_pid
        result = evaluator.evaluate(Candidate(SPEC, impl.name, impl.genome_space.default(), problem))
        table[impl.name] = {"result": result, "worker_before": before, "worker_after": evaluator.worker_pid}

    with Evaluator(config) as evaluator:
        for impl in PLANTED.implementations:
            if impl.name != LOOPING:
                judge(evaluator, impl)
    with Evaluator(dataclasses.replace(config, timeout_s=loop_timeout_s)) as looping:
        judge(looping, PLANTED.implementation(LOOPING))
    return table
