"""Run samples through each family's default Triton kernel and compare with its float64 reference.

Each sample is passed, failed (raised, wrong, or changed an input it does not write), or not claimed
(the family's problem() raised Unsupported: Inductor keeps such calls).
"""
from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass, field
from typing import Callable, Collection, Iterable, Sequence

import torch
import torch.utils._pytree as pytree

from ..families.base import Abstraction, KernelFamily, Unsupported
from ..families.checking import Mismatch, as_tuple, compare, same_values
from .samples import Sample, opinfo_samples, random_samples

SHOWN_MESSAGES = 3


@dataclass
class OverloadResult:
    """Outcome of one overload's samples: counts, dtypes of the passing ones, first failures, reasons not claimed."""

    overload: str
    family: str
    passed: int = 0
    failed: int = 0
    not_claimed: int = 0
    dtypes: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    not_claimed_reasons: collections.Counter = field(default_factory=collections.Counter)

    @property
    def proven(self) -> bool:
        """Counted as covered: some sample passed and none failed."""
        return self.passed > 0 and self.failed == 0

    @classmethod
    def from_dict(cls, d: dict) -> OverloadResult:
        """Inverse of to_dict (the failure and not-claimed lists keep only what to_dict kept)."""
        return cls(d["overload"], d["family"], d["passed"], d["failed"], d["not_claimed"], set(d["dtypes"]),
                   list(d["failures"]), collections.Counter(d["not_claimed_reasons"]))

    def to_dict(self) -> dict:
        return {"overload": self.overload, "family": self.family, "passed": self.passed, "failed": self.failed,
                "not_claimed": self.not_claimed, "dtypes": sorted(self.dtypes), "failures": self.failures,
                "not_claimed_reasons": dict(self.not_claimed_reasons.most_common(SHOWN_MESSAGES))}


def _signature(value):
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.stride(), value.dtype, value.device.type)
    if isinstance(value, (list, tuple)):
        return tuple(_signature(v) for v in value)
    return value if isinstance(value, (bool, int, float, str, type(None))) else repr(value)


def _dtype_of(sample: Sample) -> str:
    tensors = [a for a in pytree.tree_leaves(sample.args) if isinstance(a, torch.Tensor)]
    return str(tensors[0].dtype).removeprefix("torch.") if tensors else "scalar"


def select(samples: Iterable[Sample], limit: int | None) -> dict[torch._ops.OpOverload, list[Sample]]:
    """Distinct samples per overload (same shapes, strides, dtypes and scalars count once), at most
    `limit` each, taken round-robin over dtypes in the order met (deterministic)."""
    seen, by_overload = set(), collections.defaultdict(lambda: collections.defaultdict(list))
    for sample in samples:
        key = (sample.overload, _signature(sample.args))
        if key not in seen:
            seen.add(key)
            by_overload[sample.overload][_dtype_of(sample)].append(sample)
    selected = {}
    for overload, by_dtype in by_overload.items():
        spread = [s for group in itertools.zip_longest(*by_dtype.values()) for s in group if s is not None]
        selected[overload] = spread if limit is None else spread[:limit]
    return selected


def _written(overload: torch._ops.OpOverload) -> set[int]:
    return {i for i, a in enumerate(overload._schema.arguments) if a.alias_info is not None and a.alias_info.is_write}


def _copy(value):
    return value.clone() if isinstance(value, torch.Tensor) else value


def check_sample(family: KernelFamily, sample: Sample) -> tuple[str, str]:
    """('passed' | 'failed' | 'not claimed', message) for one sample run through the family's Triton kernel."""
    try:
        problem = family.problem(sample.overload, sample.args, {})
    except Unsupported as e:
        return "not claimed", str(e)
    kernel = family.default_kernel(problem, Abstraction.TRITON)
    if kernel is None:
        return "not claimed", f"no genome of {family.name}'s Triton kernels supports it"
    impl, genome = kernel
    try:
        want = as_tuple(family.reference(problem, [_copy(a) for a in sample.args]))
        args = [_copy(a) for a in sample.args]
        got = as_tuple(impl.build(problem, genome)(*args))
        for i in set(range(len(args))) - _written(sample.overload):
            if isinstance(args[i], torch.Tensor) and not same_values(args[i], sample.args[i]):
                raise Mismatch(f"kernel changed argument {i}, which it does not write")
        compare(family, problem, got, want, family.reduced_extent(problem, sample.args))
    except Exception as e:
        return "failed", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
    return "passed", ""


def run_coverage(families: Sequence[KernelFamily], device: str = "cpu", limit: int | None = None,
                 use_opinfo: bool = True, use_random: bool = True,
                 progress: Callable[[str], None] | None = None,
                 only: Collection[torch._ops.OpOverload] | None = None) -> list[OverloadResult]:
    """One result per overload of `families` (in their order; only those in `only`, if given), from at
    most `limit` OpInfo samples and `limit` random samples each."""
    owner = {o: f for f in families for o in f.overloads}
    traced = select(opinfo_samples(families, device, only=only), limit) if use_opinfo else {}
    results = []
    for family in families:
        for overload in family.overloads:
            if only is not None and overload not in only:
                continue
            result = OverloadResult(str(overload), family.name)
            samples = list(traced.get(overload, []))
            if use_random:
                samples += select(random_samples(family, overload, device), limit).get(overload, [])
            for sample in samples:
                outcome, message = check_sample(owner[overload], sample)
                if outcome == "passed":
                    result.passed += 1
                    result.dtypes.add(_dtype_of(sample))
                elif outcome == "failed":
                    result.failed += 1
                    if len(result.failures) < SHOWN_MESSAGES:
                        result.failures.append(f"{sample.source}: {message}")
                else:
                    result.not_claimed += 1
                    result.not_claimed_reasons[message] += 1
            if progress is not None:
                progress(f"{result.overload}: {result.passed} passed, {result.failed} failed, "
                         f"{result.not_claimed} not claimed")
            results.append(result)
    return results
