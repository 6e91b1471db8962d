"""A tiny kernel family (row sums of a matrix, `aten.sum.dim_IntList` over dim 1) with planted bad candidates.

Each implementation named in EXPECTED cheats or fails in one way; the evaluator must score it 0 with
that status (CPU; on CUDA the interpreted ones are compiled and the out-of-bounds read is an illegal
memory access). `row_sum_decomposition` and `row_sum_triton` are correct.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from torch_kevolve.evolve.evaluation import Candidate
from torch_kevolve.evolve.evaluator import Evaluator, EvaluatorConfig
from torch_kevolve.families.base import Abstraction, GenomeSpace, Implementation, KernelFamily, Unsupported
from torch_kevolve.families.triton_launch import launch
from torch_kevolve.key import Problem

from .planted_stream import SIDE_STREAM

MODULE = __name__
FAR_AWAY = 1 << 40  # elements past the input: unmapped memory on any machine


@triton.jit
def row_sum_kernel(
    x_ptr,  # [rows, cols] contiguous
    out_ptr,  # [rows]
    cols,
    BLOCK: tl.constexpr,
    BIAS: tl.constexpr,  # added to every sum (wrong result)
    NAN_FIRST_ROW: tl.constexpr,
    SCRATCH_IN_INPUT: tl.constexpr,  # also stores each sum over the row's first input element
    OFFSET: tl.constexpr,  # elements added to every load address (out of bounds when nonzero)
):
    tl.static_assert(BLOCK >= 16, "BLOCK must be at least 16")
    row = tl.program_id(0)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, cols, BLOCK):
        c = start + tl.arange(0, BLOCK)
        acc += tl.load(x_ptr + OFFSET + row * cols + c, mask=c < cols, other=0.0).to(tl.float32)
    total = tl.sum(acc, axis=0) + BIAS
    if NAN_FIRST_ROW:
        total = tl.where(row == 0, float("nan"), total)
    if SCRATCH_IN_INPUT:
        tl.store(x_ptr + row * cols, total)
    tl.store(out_ptr + row, total)


@triton.jit
def spin_kernel(out_ptr, n):
    i = tl.program_id(0) * 0
    while i < n:
        tl.store(out_ptr, i.to(tl.float32))
        i = i * 1  # never advances: the loop does not end


def _row_sum(x, rows_written=None, block=32, bias=0.0, nan_first_row=False, scratch=False, offset=0):
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    grid = (x.shape[0] if rows_written is None else rows_written,)
    launch(row_sum_kernel, grid, x, out, x.shape[1], BLOCK=block, BIAS=bias, NAN_FIRST_ROW=nan_first_row,
           SCRATCH_IN_INPUT=scratch, OFFSET=offset)
    return out


_first_results: dict = {}
_memo: dict = {}


def _first_result(x):
    """Computes the first call's result, then returns it for every call of that shape."""
    shape = tuple(x.shape)
    if shape not in _first_results:
        _first_results[shape] = _row_sum(x)
    return _first_results[shape].clone()


def _spin(x):
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    launch(spin_kernel, (1,), out, 1)
    return out


def _raise(x):
    raise RuntimeError("planted failure")


def _matvec(x):
    return torch.mv(x.float(), torch.ones(x.shape[1], device=x.device)).to(x.dtype)


def _memo_by_input(x):
    """Correct on every new input; a repeated call on the same tensor returns the remembered result
    without computing: a timing loop then measures a dictionary lookup."""
    key = (x.data_ptr(), x._version, x[0, 0].item())
    if key not in _memo:
        _memo[key] = _matvec(x)
    return _memo[key]


def _build(compute):
    def build(problem, genome):
        def row_sum(x, dim, keepdim=False):
            return compute(x, **genome)

        return row_sum

    return build


def _supports_all(problem, genome):
    return None


def _implementation(name, abstraction, compute, genome=(("block", (32,)),)):
    return Implementation(name=name, abstraction=abstraction, genome_space=GenomeSpace(genome),
                          build=_build(compute), supports=_supports_all, source_modules=(MODULE,))


TRITON, DECOMPOSITION = Abstraction.TRITON, Abstraction.DECOMPOSITION
IMPLEMENTATIONS = (
    _implementation("row_sum_decomposition", DECOMPOSITION, _matvec, ()),
    _implementation("row_sum_triton", TRITON, _row_sum),
    _implementation("compile_error", TRITON, _row_sum, (("block", (8,)),)),
    _implementation("wrong", TRITON, lambda x, block: _row_sum(x, block=block, bias=1.0)),
    _implementation("partial_write", TRITON, lambda x, block: _row_sum(x, block=block, rows_written=x.shape[0] // 2)),
    _implementation("nan", TRITON, lambda x, block: _row_sum(x, block=block, nan_first_row=True)),
    _implementation("infinite_loop", TRITON, _spin, ()),
    _implementation("result_reuse", TRITON, _first_result, ()),
    _implementation("mutates_input", TRITON, lambda x, block: _row_sum(x, block=block, scratch=True)),
    _implementation("raises", TRITON, _raise, ()),
    _implementation("out_of_bounds", TRITON, lambda x, block: _row_sum(x, block=block, offset=FAR_AWAY)),
    _implementation("memo_by_input", DECOMPOSITION, _memo_by_input, ()),
    SIDE_STREAM,
)

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
SPEC = f"{MODULE}:PLANTED"


# On CUDA the Triton candidates are compiled and timed too.
EXPECTED_CUDA = {**EXPECTED, "row_sum_triton": "ok"}
LOOPING = "infinite_loop"


def evaluate_planted(config: EvaluatorConfig, triton_problem: Problem, timed_problem: Problem,
                     loop_timeout_s: float) -> dict[str, dict]:
    """Judge every planted candidate with one evaluator (Triton ones on `triton_problem`, decompositions on
    `timed_problem`), the infinite loop with its own evaluator of timeout `loop_timeout_s`.

    name -> {"result": EvaluationResult, "worker_before": pid or None, "worker_after": pid or None}.
    """
    table = {}
    with Evaluator(config) as evaluator, \
            Evaluator(dataclasses.replace(config, timeout_s=loop_timeout_s)) as looping:
        for impl in PLANTED.implementations:
            judge = looping if impl.name == LOOPING else evaluator
            problem = triton_problem if impl.abstraction is TRITON else timed_problem
            candidate = Candidate(SPEC, impl.name, impl.genome_space.default(), problem)
            before = judge.worker_pid
            result = judge.evaluate(candidate)
            table[impl.name] = {"result": result, "worker_before": before, "worker_after": judge.worker_pid}
    return table
