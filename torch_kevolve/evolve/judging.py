"""Judging candidates inside a worker: correctness on cloned, poisoned trials, then timing against the
torch.compile'd reference, which is prepared (trials, output layout, time) once per problem.

Runs in the worker process only; the evaluator in the parent never runs a candidate.
"""
from __future__ import annotations

import importlib
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..families.base import DISTRIBUTIONS, Abstraction, Genome, Implementation, KernelFamily
from ..families.checking import (Mismatch, Trial, as_tuple, clone_args, compare, largest_error, make_trials,
                                 mutated_input, relative_tolerance_of_largest)
from ..families.schema import call_as_compiled
from ..key import Problem
from . import poison
from .evaluation import EvaluationResult, Status
from .timing import copy_ceiling_gbps, copy_floor_us, graphed_or_launched_us, matmul_ceiling_tflops, paired_us

# Text of errors that leave a CUDA context unusable: the worker is as good as dead.
FATAL_DEVICE_ERRORS = ("illegal memory access", "misaligned address", "unspecified launch failure",
                       "an illegal instruction", "CUDA error: device-side assert", "CUDA_ERROR_")
# Exception classes (or base classes) raised when Triton, Inductor or Dynamo's backend reject a candidate.
COMPILER_FAILURES = frozenset({"CompilationError", "BackendCompilerFailed", "InductorError", "CppCompileError"})
ERROR_CHARS = 2000


def overload_of(family: KernelFamily, problem: Problem) -> torch._ops.OpOverload:
    for overload in family.overloads:
        if str(overload) == problem.op:
            return overload
    raise KeyError(f"{family.name} has no overload {problem.op}")


def timeable(impl: Implementation, device: torch.device) -> bool:
    """Whether candidates of `impl` can be timed on `device` (Triton on CPU is interpreted: correctness only)."""
    return not (impl.abstraction is Abstraction.TRITON and device.type != "cuda")


def trial_plan(trials: int) -> list[tuple[int, str]]:
    """(seed, distribution) of each trial: every distribution in turn, a new seed each round."""
    return [(i // len(DISTRIBUTIONS), DISTRIBUTIONS[i % len(DISTRIBUTIONS)]) for i in range(trials)]


@dataclass(frozen=True)
class Layout:
    """Shape, dtype and strides of one output of the compiled reference."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    stride: tuple[int, ...]
    nbytes: int

    @staticmethod
    def of(t: torch.Tensor) -> Layout:
        return Layout(tuple(t.shape), t.dtype, tuple(t.stride()), t.numel() * t.element_size())

    def differs(self, t: torch.Tensor) -> str:
        """What of `t` differs from this layout ('' if nothing); strides only count along dims longer than 1."""
        if tuple(t.shape) != self.shape:
            return f"shape {tuple(t.shape)} != {self.shape}"
        if t.dtype != self.dtype:
            return f"dtype {t.dtype} != {self.dtype}"
        if any(n > 1 and a != b for n, a, b in zip(self.shape, t.stride(), self.stride)):
            return f"strides {tuple(t.stride())} != {self.stride}"
        return ""


def held_on(device: torch.device, trials: list[Trial]) -> list[Trial]:
    """The trials with their references moved onto a CUDA `device` when all of them fit in a quarter of its
    free memory (each check then compares there without a copy); otherwise as they are."""
    if device.type != "cuda":
        return trials
    nbytes = sum(w.numel() * w.element_size() for t in trials for w in t.want if isinstance(w, torch.Tensor))
    if nbytes > torch.cuda.mem_get_info(device)[0] // 4:
        return trials
    return [Trial(t.args, tuple(w.to(device) if isinstance(w, torch.Tensor) else w for w in t.want)) for t in trials]


@dataclass
class Bench:
    """A prepared problem: trials with float64 references, the compiled reference's output layouts and time,
    and the roofline (copy floor for the problem's bytes, device ceilings)."""

    family: KernelFamily
    problem: Problem
    device: torch.device
    trials: list[Trial]
    layouts: list[list[Layout]]
    reference: Callable
    t_ref_us: float
    floor_us: float
    ceiling_gbps: float
    ceiling_tflops: float | None
    error_allowances: tuple[float, ...] = ()  # per trial, where the family sets error_vs_reference

    @staticmethod
    def prepare(family: KernelFamily, problem: Problem, device: torch.device, trials: int) -> Bench:
        trial_list = held_on(device, [make_trials(family, problem, device, (seed,), (dist,))[0]
                                      for seed, dist in trial_plan(trials)])
        overload = overload_of(family, problem)
        torch._dynamo.reset()
        reference = torch.compile(lambda *a: call_as_compiled(overload, a), dynamic=False)  # kwarg-only by keyword
        outputs = [as_tuple(reference(*t.args)) for t in trial_list]
        layouts = [[Layout.of(o) for o in outs] for outs in outputs]
        args = trial_list[0].args
        flops = family.flops(problem)
        return Bench(
            family, problem, device, trial_list, layouts, reference,
            t_ref_us=graphed_or_launched_us(lambda: reference(*args), device),
            floor_us=copy_floor_us(family.bytes_moved(problem), device),
            ceiling_gbps=copy_ceiling_gbps(device),
            ceiling_tflops=matmul_ceiling_tflops(device, problem.dtype(problem.dtypes[0][0])) if flops else None,
            error_allowances=error_allowances(family, problem, trial_list, outputs),
        )

    def summary(self) -> dict:
        return {"t_ref_us": self.t_ref_us, "floor_us": self.floor_us, "ceiling_gbps": self.ceiling_gbps,
                "trials": len(self.trials), "poison": poison.method(self.device)}


def error_allowances(family: KernelFamily, problem: Problem, trials: Sequence[Trial],
                     outputs: Sequence[tuple]) -> tuple[float, ...]:
    """Per trial, the largest error a candidate may make: family.error_vs_reference times the reference's own
    error against float64, or times compare's relative tolerance of its largest output where that is more (short
    sums, where no bias builds up); () where the family sets none."""
    bound = family.error_vs_reference
    if bound is None:
        return ()
    return tuple(bound * max(largest_error(family, problem, outs, t.want),
                             relative_tolerance_of_largest(family, problem, outs))
                 for outs, t in zip(outputs, trials))


def describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:ERROR_CHARS]


def _chain(e: BaseException) -> list[BaseException]:
    chain = []
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    return chain


def _is_static_assert(e: BaseException) -> bool:
    """An interpreted tl.static_assert that failed (a compile-time check, raised at run time on CPU)."""
    frames = traceback.extract_tb(e.__traceback__)
    return isinstance(e, AssertionError) and bool(frames) and frames[-1].name == "_new_static_assert"


def classify(e: BaseException) -> Status:
    """CRASH for errors that break the device, COMPILE_ERROR for compiler failures, else ERROR."""
    chain = _chain(e)
    if any(marker in str(x) for x in chain for marker in FATAL_DEVICE_ERRORS):
        return Status.CRASH
    if any(c.__name__ in COMPILER_FAILURES for x in chain for c in type(x).__mro__) or any(map(_is_static_assert, chain)):
        return Status.COMPILE_ERROR
    return Status.ERROR


def as_in_a_model(impl: Implementation, fn: Callable, device: torch.device) -> Callable:
    """Candidates run inside Inductor's graph in real use (on CPU, Triton kernels stay opaque custom ops),
    so timeable ones are compiled, as the reference is."""
    if not timeable(impl, device):
        return fn
    torch._dynamo.reset()  # every candidate shares the builder's code object: no recompile limit
    return torch.compile(fn, dynamic=False)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _verdict(bench: Bench, index: int, args: Sequence, got: tuple) -> tuple[Status, str] | float:
    """The worst error of a run on trial `index`, or (status, why) when it is not correct."""
    trial = bench.trials[index]
    mutated = mutated_input(args, trial.args)
    if mutated is not None:
        return Status.MUTATED_INPUT, f"trial {index}: the candidate wrote into its input {mutated}"
    checked = bench.family.checked_outputs(bench.problem)
    if len(got) != len(bench.layouts[index]):
        return Status.WRONG, f"trial {index}: {len(got)} outputs, the reference has {len(bench.layouts[index])}"
    for i in checked:
        why = bench.layouts[index][i].differs(got[i]) if isinstance(got[i], torch.Tensor) else "not a tensor"
        if why:
            return Status.WRONG, f"trial {index}: output {i}: {why}"
    extent = bench.family.reduced_extent(bench.problem, trial.args)
    try:
        worst = compare(bench.family, bench.problem, got, trial.want, extent)
    except Mismatch as mismatch:
        return _diagnose(bench, index, got, checked, extent, str(mismatch))
    if bench.error_allowances and worst > bench.error_allowances[index]:
        return Status.WRONG, (f"trial {index}: largest error {worst:.3g} is over {bench.error_allowances[index]:.3g}, "
                              f"{bench.family.error_vs_reference:g} times the torch.compile'd reference's own")
    return worst


def _diagnose(bench: Bench, index: int, got: tuple, checked: Sequence[int], extent: int,
              mismatch: str) -> tuple[Status, str]:
    """Why outputs differ: unwritten (poison left), NaN, an earlier trial's result, or plain wrong."""
    want = bench.trials[index].want
    for i in checked:
        unwritten = int(poison.poisoned(got[i]).sum())
        if unwritten:
            return Status.PARTIAL_WRITE, f"trial {index}: output {i}: {unwritten} of {got[i].numel()} elements never written"
    for i in checked:
        if got[i].is_floating_point() and bool((got[i].isnan() & ~want[i].to(got[i].device).isnan()).any()):
            return Status.NAN, f"trial {index}: output {i} has NaN where the reference has none"
    for earlier in range(index):
        try:
            compare(bench.family, bench.problem, got, bench.trials[earlier].want, extent)
        except Mismatch:
            continue
        return Status.STALE, f"trial {index}: the outputs are trial {earlier}'s result (reused across calls)"
    return Status.WRONG, f"trial {index}: {mismatch}"


def _jit_functions(impl: Implementation) -> list:
    from triton.runtime.jit import JITFunction

    return [v for m in impl.source_modules for v in vars(importlib.import_module(m)).values()
            if isinstance(v, JITFunction)]


def _compiled_kernels(jit_fn) -> list:
    """The CompiledKernels a JITFunction holds (its per-device cache tuples start with the kernel dict)."""
    caches = getattr(jit_fn, "device_caches", {})
    return [k for cache in caches.values() for k in cache[0].values() if hasattr(k, "n_regs")]


def kernel_metadata(impl: Implementation, run: Callable[[], object], device: torch.device) -> list[dict]:
    """Registers, spills and shared memory of the Triton kernels that `run` compiles (CUDA only)."""
    if impl.abstraction is not Abstraction.TRITON or device.type != "cuda":
        return []
    jit_fns = _jit_functions(impl)
    seen = {id(k) for f in jit_fns for k in _compiled_kernels(f)}
    run()
    _sync(device)
    return [{"kernel": f.fn.__name__, "n_regs": k.n_regs, "n_spills": k.n_spills,
             "shared": getattr(k.metadata, "shared", None), "num_warps": getattr(k.metadata, "num_warps", None),
             "num_stages": getattr(k.metadata, "num_stages", None)}
            for f in jit_fns for k in _compiled_kernels(f) if id(k) not in seen]


def judge(bench: Bench, impl: Implementation, genome: Genome, suspect_below: float) -> EvaluationResult:
    """Check the candidate on every trial (inputs cloned, allocations poisoned), then time it like the reference.

    `suspect_below`: a time under this fraction of the roofline floor is not believed (SUSPECT).
    """
    start = time.perf_counter()
    problem, device = bench.problem, bench.device
    base = dict(t_ref_us=bench.t_ref_us, floor_us=bench.floor_us, ceiling_gbps=bench.ceiling_gbps,
                ceiling_tflops=bench.ceiling_tflops)

    def result(status: Status, error: str = "", **fields) -> EvaluationResult:
        return EvaluationResult(status, error, **{**base, **fields}, seconds=time.perf_counter() - start)

    try:
        fn = as_in_a_model(impl, impl.build(problem, genome), device)
    except Exception as e:
        return result(Status.COMPILE_ERROR, describe(e))
    errors: list[float] = []
    for index, trial in enumerate(bench.trials):
        args = clone_args(trial.args)
        poison.poison(device, [layout.nbytes for layout in bench.layouts[index]])
        try:
            got = as_tuple(fn(*args))
            _sync(device)
            verdict = _verdict(bench, index, args, got)
        except Exception as e:
            return result(classify(e), describe(e), trial_errors=errors)
        if not isinstance(verdict, float):
            return result(*verdict, trial_errors=errors)
        errors.append(verdict)
    if not timeable(impl, device):
        return result(Status.UNMEASURED, "Triton under the interpreter: checked for correctness only",
                      trial_errors=errors)
    args = bench.trials[0].args
    try:
        # The reference is timed again right after the candidate, by the same method: a load change between
        # the two (another process, clocks) then moves both times, not the fitness.
        t_us, t_ref_us, method = paired_us(lambda: fn(*args), lambda: bench.reference(*args), device)
        kernels = kernel_metadata(impl, lambda: impl.build(problem, genome)(*clone_args(args)), device)
    except Exception as e:
        return result(classify(e), describe(e), trial_errors=errors)
    flops = bench.family.flops(problem)
    measured = dict(trial_errors=errors, t_ref_us=t_ref_us, t_cand_us=t_us, timing=method, kernels=kernels,
                    achieved_gbps=bench.family.bytes_moved(problem) / (t_us * 1e3),
                    achieved_tflops=flops / (t_us * 1e6) if flops else None)
    if t_us < suspect_below * bench.floor_us:
        floor_us = min(bench.floor_us, copy_floor_us(bench.family.bytes_moved(problem), device))  # measured again now
        if t_us < suspect_below * floor_us:
            return result(Status.SUSPECT, f"{t_us:.2f} us is below {suspect_below} x the roofline floor "
                          f"{floor_us:.2f} us (the fastest copy of the problem's bytes)", **measured)
    return result(Status.OK, fitness=t_ref_us / t_us, **measured)
