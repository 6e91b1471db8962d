"""Sizes of a call that vary at run time (symbolic sizes, under dynamic shapes), read without adding guards: as
their hints (the sizes the graph was compiled with) or moved away from them, on static stand-ins of the call's values.
"""
from __future__ import annotations

import sympy
import torch
import torch.utils._pytree as pytree
from torch._guards import detect_fake_mode

from .base import Unsupported

_SYMBOLIC = (torch.SymInt, torch.SymFloat, torch.SymBool)


def _sizes(value) -> list:
    if isinstance(value, torch.Tensor):
        return [*value.shape, *value.stride(), value.storage_offset()]
    return [value]


def is_symbolic(values) -> bool:
    """Whether any size, stride or scalar among `values` (nested lists of tensors and scalars) is symbolic."""
    return any(isinstance(s, _SYMBOLIC) for v in pytree.tree_leaves(list(values)) for s in _sizes(v))


def _concrete(value, moved: bool):
    """`value` with its symbols at their hints (moved: at twice their hints plus one)."""
    if not isinstance(value, _SYMBOLIC):
        return value
    if isinstance(value, torch.SymBool):
        raise Unsupported("a symbolic bool argument")
    shape_env = value.node.shape_env
    hints = shape_env.backed_var_to_val if hasattr(shape_env, "backed_var_to_val") else shape_env.var_to_val
    expr = shape_env.replace(value.node.expr)
    sizes = {}
    for symbol in expr.free_symbols:
        hint = hints.get(symbol)
        if hint is None:
            raise Unsupported(f"size {expr} is known only when the graph runs (data-dependent)")
        sizes[symbol] = 2 * hint + 1 if moved else hint
    number = expr.xreplace(sizes)
    if not isinstance(number, sympy.Number):
        raise Unsupported(f"size {expr} has no hint")
    return int(number) if isinstance(value, torch.SymInt) else float(number)


def stand_ins(values: list, moved: bool = False) -> list:
    """`values` (nested lists of fake tensors and scalars) with every symbolic size and scalar made concrete:
    each symbol at its hint, or (moved) at twice its hint plus one; tensors become fake tensors of those sizes."""
    fake_mode = detect_fake_mode([v for v in pytree.tree_leaves(values) if isinstance(v, torch.Tensor)])

    def concrete(value):
        if not isinstance(value, torch.Tensor):
            return _concrete(value, moved)
        shape, stride = [_concrete(s, moved) for s in value.shape], [_concrete(s, moved) for s in value.stride()]
        if min(shape, default=0) < 0:
            raise Unsupported(f"sizes {tuple(value.shape)} are negative at other sizes of their symbols")
        with fake_mode:
            return torch.empty_strided(shape, stride, dtype=value.dtype, device=value.device)

    return pytree.tree_map(concrete, list(values))


def size_hint(n) -> int:
    """An int size, or a symbolic one at its hint."""
    return _concrete(n, moved=False)
