"""The kernel-family interface: what a family declares so the backend, cache and search can use it.

A family is plain data plus kernels. It knows nothing of torch.compile, the cache or the search.
"""
from __future__ import annotations

import enum
import hashlib
import importlib
import inspect
import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch

from ..key import Problem

Genome = dict


class Unsupported(Exception):
    """Raised by a family when a call falls outside its declared constraints; the message says why."""


def one_device(*tensors) -> torch.device:
    """The device of all the tensors (None skipped); Unsupported when they are on several."""
    devices = {t.device for t in tensors if t is not None}
    if len(devices) != 1:
        raise Unsupported(f"tensors on several devices: {sorted(map(str, devices))}")
    return devices.pop()


class Abstraction(str, enum.Enum):
    TRITON = "triton"
    CUTE = "cute"
    DECOMPOSITION = "decomposition"


DISTRIBUTIONS = ("normal", "uniform", "large", "edge")


@dataclass(frozen=True)
class GenomeSpace:
    """Discrete choices of one implementation: name -> allowed values (first value is the default)."""

    choices: tuple[tuple[str, tuple], ...]

    def default(self) -> Genome:
        return {name: values[0] for name, values in self.choices}

    def __iter__(self) -> Iterator[Genome]:
        names = [n for n, _ in self.choices]
        for values in itertools.product(*(v for _, v in self.choices)):
            yield dict(zip(names, values))

    def by_changes(self) -> Iterator[Genome]:
        """Every genome, those changing fewer genes of the default first, in space order among equals; each count's
        genomes are made only once the counts before it are used up."""
        sizes = [len(values) for _, values in self.choices]
        for changed in range(len(sizes) + 1):
            indices = []
            for genes in itertools.combinations(range(len(sizes)), changed):
                for picks in itertools.product(*(range(1, sizes[g]) for g in genes)):
                    index = [0] * len(sizes)
                    for gene, pick in zip(genes, picks):
                        index[gene] = pick
                    indices.append(tuple(index))
            for index in sorted(indices):  # product order: the space's order
                yield {name: values[i] for (name, values), i in zip(self.choices, index)}

    def __len__(self) -> int:
        n = 1
        for _, values in self.choices:
            n *= len(values)
        return n

    def validate(self, genome: Genome) -> None:
        """Raise ValueError unless `genome` names exactly this space's choices with allowed values."""
        allowed = dict(self.choices)
        if set(genome) != set(allowed):
            raise ValueError(f"genome keys {sorted(genome)} != {sorted(allowed)}")
        for name, value in genome.items():
            if value not in allowed[name]:
                raise ValueError(f"genome {name}={value!r} not in {allowed[name]}")


def supports_all(problem: Problem, genome: Genome) -> str | None:
    """`Implementation.supports` for an implementation that runs every problem of its family."""
    return None


@dataclass(frozen=True)
class Implementation:
    """One way to compute a family's operator at one abstraction level.

    `build(problem, genome)` returns a callable taking the overload's positional arguments and
    returning exactly what the overload returns (same shapes, dtypes, strides).
    `supports(problem, genome)` returns None when it can run that problem, else the reason.
    `source_modules` are the modules whose text is this implementation's source (hashed into records).
    """

    name: str
    abstraction: Abstraction
    genome_space: GenomeSpace
    build: Callable[[Problem, Genome], Callable]
    supports: Callable[[Problem, Genome], str | None]
    source_modules: tuple[str, ...]

    def source(self) -> str:
        return "\n".join(inspect.getsource(importlib.import_module(m)) for m in self.source_modules)

    def source_sha256(self) -> str:
        return hashlib.sha256(self.source().encode()).hexdigest()

    def genomes(self, problem: Problem) -> list[Genome]:
        """Every genome of the space that supports `problem`."""
        return [g for g in self.genome_space if self.supports(problem, g) is None]

    def default_genome(self, problem: Problem) -> Genome | None:
        """The space's default genome adapted to `problem`: the default when it supports the problem, else the
        supporting genome that changes the fewest of its genes (the first such in space order); None if none."""
        return next((g for g in self.genome_space.by_changes() if self.supports(problem, g) is None), None)


@dataclass(frozen=True)
class LayoutForm:
    """A form of one implementation's kernels that computes a layout pattern op (patterns.INNER_CALLS: its value
    a layout of the inner call's outputs, or its input one of the inner call's inputs laid out so) directly.

    `build(problem, genome)`, on the inner call's problem and the implementation's genome, returns a callable
    taking the layout op's positional arguments and returning what it returns, or the reason (a str) the genome
    has no such form. `as_inner(fn)` is that callable as one of the inner call's arguments and results, which the
    family's correctness check can run. `source_modules` are the modules whose text is the form's own code (beside
    the implementation's).
    """

    build: Callable[[Problem, Genome], Callable | str]
    as_inner: Callable[[Callable], Callable]
    source_modules: tuple[str, ...]


@dataclass
class KernelFamily(ABC):
    """A unit of kernel knowledge: overloads it implements, reference, inputs, roofline, kernels."""

    name: str
    version: str
    overloads: tuple[torch._ops.OpOverload, ...]
    implementations: tuple[Implementation, ...] = field(default_factory=tuple)
    # A candidate's largest error on a trial may be at most this many times the torch.compile'd reference's own
    # (or times compare's relative tolerance of the largest output, where that is more); None: only the
    # tolerances of checking.compare, worst-case bounds that admit a biased sum.
    error_vs_reference: float | None = None
    # Inductor lowers the family's ops to its own code, which it fuses with pointwise neighbours: a winner
    # measured alone must also pay for the fusion it breaks (torch_kevolve/backend/fusion.py).
    inductor_fuses: bool = False
    # Problem dims that may differ from call to call of one compiled graph (symbolic sizes under dynamic shapes,
    # torch_kevolve/backend/size_hints.py), and the implementations (by name) whose built callables read them from
    # their arguments at run time, adding no guard on them: a winner of those, measured at the largest sizes of
    # these dims in the cache (KevolvePass._choose), runs at every other. The rest run static sizes only.
    dynamic_dims: frozenset[str] = frozenset()
    dynamic_implementations: frozenset[str] = frozenset()

    @abstractmethod
    def problem(self, overload: torch._ops.OpOverload, args: Sequence, kwargs: dict) -> Problem:
        """The problem a call describes (args may be fake or real tensors); raise Unsupported if not ours."""

    @abstractmethod
    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """Valid random positional arguments for the problem's overload, drawn from `dist` (DISTRIBUTIONS)."""

    @abstractmethod
    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        """The eager ATen result in float64 (on CPU), for correctness checks."""

    @abstractmethod
    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        """Indices of the outputs whose values the reference defines (others are device-private)."""

    @abstractmethod
    def bytes_moved(self, problem: Problem) -> int:
        """The fewest bytes a kernel must move through memory (inputs read once, outputs written once)."""

    def flops(self, problem: Problem) -> int:
        return 0

    def default_kernel(self, problem: Problem, abstraction: Abstraction,
                       dynamic: bool = False) -> tuple[Implementation, Genome] | None:
        """The first implementation of `abstraction` (and, with `dynamic`, one that runs varying sizes) that has a
        genome for `problem`, with its default genome (Implementation.default_genome); None if there is none."""
        for impl in self.implementations:
            if (impl.abstraction is abstraction and (impl.name in self.dynamic_implementations or not dynamic)
                    and (genome := impl.default_genome(problem)) is not None):
                return impl, genome
        return None

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        """The most terms one output element sums on these inputs (scales the absolute tolerance)."""
        return 1

    def check_overload(self, overload: torch._ops.OpOverload) -> None:
        """Raise Unsupported unless `overload` is one of this family's."""
        if overload not in self.overloads:
            raise Unsupported(f"{overload} is not an overload of family {self.name}")

    def example_problems(self, overload: torch._ops.OpOverload) -> tuple[Problem, ...]:
        """Small problems of `overload`: their random inputs (make_inputs) join the coverage suite's samples,
        and the first is the template `kevolve evolve --shape-spec` edits (none: the family offers neither)."""
        return ()

    def implementation(self, name: str) -> Implementation:
        for impl in self.implementations:
            if impl.name == name:
                return impl
        raise KeyError(f"{self.name} has no implementation {name!r}")
