"""Samples of claimed overloads: OpInfo samples traced to the ATen overloads they reach, and the
families' own random inputs. A sample is an overload with every schema argument, in schema order."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Collection, Iterable, Iterator, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..families.base import KernelFamily
from ..families.schema import schema_values

# The dtypes OpInfo samples are drawn in (each OpInfo's supported ones among these).
SAMPLE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.bool)
RANDOM_DISTRIBUTIONS = ("normal", "uniform")


@dataclass(frozen=True)
class Sample:
    """One call of `overload`: `args` holds every schema argument in schema order; `source` says where it came from."""

    overload: torch._ops.OpOverload
    args: tuple
    source: str


def _snapshot(value):
    """A private copy of a call argument (tensors cloned, so later in-place calls cannot change it)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_snapshot(v) for v in value)
    return value


class _CallRecorder(TorchDispatchMode):
    """Records the calls to `wanted` overloads that succeed under it, with snapshots of their arguments."""

    def __init__(self, wanted: frozenset, source: str, sink: list):
        super().__init__()
        self.wanted, self.source, self.sink = wanted, source, sink

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in self.wanted:
            return func(*args, **kwargs)
        snapshot = tuple(_snapshot(v) for v in schema_values(func, args, kwargs))
        result = func(*args, **kwargs)  # calls ATen refuses are no samples: they raise before the append
        self.sink.append(Sample(func, snapshot, self.source))
        return result


def _base_names(overloads: Iterable[torch._ops.OpOverload]) -> set[str]:
    """Operator names the overloads serve, without underscores or backward/forward suffixes."""
    names = set()
    for overload in overloads:
        name = overload.overloadpacket.__name__.strip("_")
        for suffix in ("_backward", "_dense", "_forward_only", "_forward"):
            name = name.removesuffix(suffix)
        names.add(name)
    return names


def _related(opinfo, names: set[str]) -> bool:
    """Whether an OpInfo may reach one of the named operators (a cheap filter before tracing)."""
    own = {opinfo.name.split(".")[-1].strip("_"), (opinfo.aten_name or "").strip("_")}
    return any(o == n or n.startswith(o + "_") or o.startswith(n + "_") for o in own for n in names)


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _trace_sample(opinfo, sample, recorder_for, backward: bool) -> None:
    """Run one OpInfo sample as function, in-place variant, out variant and (when `backward`)
    through autograd, each under a recorder; variants that the sample does not admit are skipped."""
    args, kwargs = sample.args, sample.kwargs
    try:
        with recorder_for("opinfo"):
            expected = opinfo(sample.input, *args, **kwargs)
    except Exception:
        return
    if opinfo.inplace_variant is not None and isinstance(sample.input, torch.Tensor):
        try:
            with recorder_for("opinfo inplace"):
                opinfo.inplace_variant(sample.input.detach().clone(), *args, **kwargs)
        except Exception:
            pass
    if opinfo.supports_out and isinstance(expected, torch.Tensor):
        try:
            with recorder_for("opinfo out"):
                opinfo(sample.input, *args, out=torch.empty_like(expected), **kwargs)
        except Exception:
            pass
    outputs = [t for t in _tensors(expected) if t.requires_grad]
    inputs = [t for t in _tensors([sample.input, list(args), list(kwargs.values())]) if t.requires_grad]
    if backward and outputs and inputs:
        try:
            grads = [torch.randn_like(t) for t in outputs]
            with recorder_for("opinfo backward"):
                torch.autograd.grad(outputs, inputs, grads, allow_unused=True)
        except Exception:
            pass


def opinfo_samples(families: Sequence[KernelFamily], device: str, dtypes: Sequence[torch.dtype] = SAMPLE_DTYPES,
                   opinfo_names: Iterable[str] | None = None,
                   only: Collection[torch._ops.OpOverload] | None = None) -> Iterator[Sample]:
    """Calls to the families' overloads (those in `only`, if given) reached by OpInfo samples (op_db) on
    `device`, in op_db order, drawn with a fixed seed.

    Only OpInfos whose name relates to a claimed operator are traced (or those in `opinfo_names`).
    """
    from torch.testing._internal.common_methods_invocations import op_db

    claimed = frozenset(o for f in families for o in f.overloads)
    wanted = claimed if only is None else claimed & frozenset(only)
    names = _base_names(claimed)  # OpInfos reach overloads of other names (nll_loss -> nll_loss2d_forward)
    for opinfo in op_db:
        if opinfo_names is not None and opinfo.name not in opinfo_names:
            continue
        if opinfo_names is None and not _related(opinfo, names):
            continue
        supported = opinfo.supported_dtypes(device)
        label = opinfo.name + (f".{opinfo.variant_test_name}" if opinfo.variant_test_name else "")
        for dtype in dtypes:
            if dtype not in supported:
                continue
            backward = opinfo.supports_autograd and dtype.is_floating_point
            recorded: list[Sample] = []

            def recorder_for(kind: str):
                return _CallRecorder(wanted, f"{kind} {label}", recorded)

            with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
                warnings.simplefilter("ignore")
                torch.manual_seed(0)  # the same sample values on every run
                try:
                    for sample in opinfo.sample_inputs(device, dtype, requires_grad=backward):
                        _trace_sample(opinfo, sample, recorder_for, backward)
                except Exception:
                    pass
            yield from recorded


def random_samples(family: KernelFamily, overload: torch._ops.OpOverload, device: str,
                   distributions: Sequence[str] = RANDOM_DISTRIBUTIONS) -> Iterator[Sample]:
    """The family's random inputs (make_inputs) for each of its example problems of `overload`."""
    for problem in family.example_problems(overload):
        for dist in distributions:
            args = family.make_inputs(problem, 0, dist, torch.device(device))
            yield Sample(overload, tuple(args), f"random {dist}")
