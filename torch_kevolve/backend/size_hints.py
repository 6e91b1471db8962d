"""Calls whose sizes vary at run time (symbolic sizes, under dynamic shapes), read without adding guards.

Dynamo compiles a graph again for every size a guard pins. A comparison of a symbolic size in our pass would pin
it, so the graph would be compiled again on every batch whose lengths differ. Families therefore see static
stand-ins of such a call: its sizes as the graph was compiled with them (their hints), keyed like any call. The
call is theirs only where the dims that vary are ones the family declares (`KernelFamily.dynamic_dims`): a second
set of stand-ins, with every symbol moved, shows which those are and that the call stays the family's.
"""
from __future__ import annotations

from ..families.base import KernelFamily, Unsupported
from ..families.symbolic_sizes import stand_ins
from ..key import Problem


def varying_problem(family: KernelFamily, overload, values: list) -> tuple[Problem, frozenset[str]]:
    """The problem of a call with symbolic sizes, at the sizes the graph was compiled with, and the names of its
    dims that vary; Unsupported unless each is one of `family.dynamic_dims` and the call is the family's at other
    sizes too."""
    problem = family.problem(overload, stand_ins(values), {})
    if not family.dynamic_dims:
        raise Unsupported(f"its sizes vary at run time (symbolic), and family {family.name} runs static sizes only")
    try:
        moved = family.problem(overload, stand_ins(values, moved=True), {})
    except Unsupported as e:
        raise Unsupported(f"its sizes vary at run time (symbolic), and at other sizes it is not the family's: {e}")
    if (moved.params, moved.dtypes, moved.contiguous) != (problem.params, problem.dtypes, problem.contiguous):
        raise Unsupported("its sizes vary at run time (symbolic), and at other sizes its parameters differ")
    varying = {name for (name, size), (_, other) in zip(problem.dims, moved.dims) if size != other}
    fixed = sorted(varying - family.dynamic_dims)
    if fixed:
        raise Unsupported(f"its {', '.join(fixed)} vary at run time (symbolic), and family {family.name} takes "
                          f"only {', '.join(sorted(family.dynamic_dims))} at run time")
    return problem, frozenset(varying)
