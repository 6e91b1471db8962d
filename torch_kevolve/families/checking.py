"""Correctness of a kernel against its family's float64 reference, with dtype-aware tolerances."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..key import Problem
from .base import KernelFamily

RTOL = {torch.float32: 1.3e-6, torch.float16: 1e-3, torch.bfloat16: 1.6e-2, torch.float64: 1e-12}


class Mismatch(AssertionError):
    """A kernel's output differs from the reference beyond tolerance (the message says where)."""


HALF = (torch.float16, torch.bfloat16)


def tolerances(dtype: torch.dtype, extent: int) -> tuple[float, float]:
    """(rtol, atol) for outputs of `dtype` that each reduce about `extent` terms; atol is a fraction of the
    largest reference magnitude. Half-precision outputs may be rounded once (and a few intermediates with
    them), but their sums accumulate in fp32, as ATen and Inductor accumulate them: a kernel summing in half
    precision fails."""
    rtol = RTOL.get(dtype, 0.0)
    if dtype in HALF:
        return rtol, rtol + RTOL[torch.float32] * max(extent, 1)
    return rtol, rtol * max(extent, 1)


def largest_finite(t: torch.Tensor) -> float:
    """The largest finite magnitude in `t` (0 when it has none)."""
    return torch.where(t.isfinite(), t.abs(), 0.0).amax().item() if t.numel() else 0.0


def compare(family: KernelFamily, problem: Problem, got: Sequence[torch.Tensor], want: Sequence[torch.Tensor],
            extent: int = 1) -> float:
    """Max abs error over the family's checked outputs; raise Mismatch on shape/dtype/value errors.

    `extent`: the most terms one output element sums (the absolute tolerance grows with it).

    Integer outputs must match exactly; NaN where the reference has none fails. The comparison runs in float64
    on each output's device (a reference held elsewhere is moved there): a GPU compares gigabytes in
    milliseconds.
    """
    worst = 0.0
    for i in family.checked_outputs(problem):
        g, w = got[i], want[i]
        if g.shape != w.shape:
            raise Mismatch(f"output {i}: shape {tuple(g.shape)} != {tuple(w.shape)}")
        g64 = g.detach().to(torch.float64)
        w64 = w.detach().to(g.device, torch.float64)
        if not g.is_floating_point():
            if not torch.equal(g64, w64):
                raise Mismatch(f"output {i}: integer values differ at {int((g64 != w64).sum())} places")
            continue
        scale = largest_finite(w64)
        if scale > torch.finfo(g.dtype).max:
            # Where the exact result overflows the output dtype, the right answer is that dtype's infinity.
            rounded = w64.to(g.dtype).to(torch.float64)
            w64 = torch.where(rounded.isinf(), rounded, w64)
            scale = largest_finite(w64)
        rtol, atol = tolerances(g.dtype, extent)
        bad = ~torch.isclose(g64, w64, rtol=rtol, atol=atol * max(scale, 1.0), equal_nan=True)
        if bad.any():
            idx = tuple(int(j) for j in bad.nonzero()[0])
            raise Mismatch(f"output {i}: {int(bad.sum())} of {g.numel()} elements off, e.g. at {idx}: {g64[idx].item()} vs {w64[idx].item()}")
        if g64.numel():
            worst = max(worst, (g64 - w64).abs().nan_to_num(0.0).amax().item())
    return worst


def largest_error(family: KernelFamily, problem: Problem, got: Sequence[torch.Tensor],
                  want: Sequence[torch.Tensor]) -> float:
    """The largest |got - want| over the family's checked floating outputs (NaN and infinite differences not
    counted; compare judges those), in float64 on got's device."""
    worst = 0.0
    for i in family.checked_outputs(problem):
        g, w = got[i], want[i]
        if g.is_floating_point() and g.numel():
            diff = g.detach().double() - w.detach().to(g.device, torch.float64)
            worst = max(worst, torch.where(diff.isfinite(), diff.abs(), 0.0).amax().item())
    return worst


def relative_tolerance_of_largest(family: KernelFamily, problem: Problem,
                                  outputs: Sequence[torch.Tensor]) -> float:
    """compare's relative tolerance for each checked floating output's dtype times its largest finite magnitude,
    the largest over the outputs."""
    return max((RTOL.get(outputs[i].dtype, 0.0) * largest_finite(outputs[i].double())
                for i in family.checked_outputs(problem) if outputs[i].is_floating_point()), default=0.0)


def as_tuple(outputs) -> tuple:
    return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)


@dataclass(frozen=True)
class Trial:
    """Inputs of one correctness run and the reference outputs for them."""

    args: tuple
    want: tuple


def make_trials(family: KernelFamily, problem: Problem, device: torch.device,
                seeds: Sequence[int] = (0,), dists: Sequence[str] = ("normal",)) -> list[Trial]:
    """One trial per seed and distribution, its reference computed once (reusable across candidates)."""
    trials = []
    for seed in seeds:
        for dist in dists:
            args = tuple(family.make_inputs(problem, seed, dist, device))
            trials.append(Trial(args, as_tuple(family.reference(problem, args))))
    return trials


def clone_args(args: Sequence) -> list:
    """The arguments with every tensor cloned, in lists too (a run on them cannot touch the originals)."""
    return [a.clone() if isinstance(a, torch.Tensor) else clone_args(a) if isinstance(a, list) else a for a in args]


def same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal shapes and values, NaN equal to NaN."""
    return a.shape == b.shape and bool(((a == b) | ((a != a) & (b != b))).all())


def mutated_input(args: Sequence, originals: Sequence) -> int | None:
    """Index of the first argument of `args` (a tensor, or a list holding one) that no longer equals its
    original (NaN equals NaN), or None."""
    for i, (a, original) in enumerate(zip(args, originals)):
        if isinstance(a, torch.Tensor) and not same_values(a, original):
            return i
        if isinstance(a, list) and mutated_input(a, original) is not None:
            return i
    return None


def check_trials(family: KernelFamily, problem: Problem, fn: Callable, trials: Sequence[Trial]) -> float:
    """Run `fn` on a clone of each trial's inputs and compare with its reference; return the worst error.

    A kernel that mutates its inputs fails.
    """
    worst = 0.0
    for trial in trials:
        args = clone_args(trial.args)
        got = as_tuple(fn(*args))
        mutated = mutated_input(args, trial.args)
        if mutated is not None:
            raise Mismatch(f"kernel mutated its input {mutated}")
        worst = max(worst, compare(family, problem, got, trial.want, family.reduced_extent(problem, trial.args)))
    return worst


def check_kernel(family: KernelFamily, problem: Problem, fn: Callable, device: torch.device,
                 seeds: Sequence[int] = (0,), dists: Sequence[str] = ("normal",)) -> float:
    """Check `fn` on fresh inputs, one per seed and distribution; return the worst error."""
    return check_trials(family, problem, fn, make_trials(family, problem, device, seeds, dists))
