"""Dimension arguments of ATen calls in one normal form, and the [rows, row_length] view of a reduction."""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .base import Unsupported


def wrap_dim(dim: int, ndim: int) -> int:
    """`dim` in [0, ndim) (a 0-d tensor takes 0 and -1); Unsupported when out of range."""
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise Unsupported(f"dim {dim} out of range for a {ndim}-d tensor")
    return dim % rank


def reduced_dims(dim, ndim: int, empty_means_all: bool = True) -> tuple[int, ...]:
    """Sorted, distinct dims of `ndim` that a call reduces: `dim` is None, an int or a list."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int):
        dim = [dim]
    if not dim and empty_means_all:
        return tuple(range(ndim))
    dims = tuple(sorted({wrap_dim(d, ndim) for d in dim}))
    if len(dims) != len(dim):
        raise Unsupported(f"dim {list(dim)} repeats a dimension")
    return tuple(d for d in dims if d < ndim)


def static_shape(t: torch.Tensor, name: str) -> tuple[int, ...]:
    if not all(isinstance(s, int) for s in t.shape):
        raise Unsupported(f"symbolic (dynamic) shape of {name} is not supported")
    return tuple(t.shape)


def packed_shape(t: torch.Tensor, name: str) -> tuple:
    """t's shape, whose leading (packed) dim may be symbolic: a size that varies from call to call at run time;
    Unsupported for a 0-d tensor or a symbolic trailing dim."""
    if t.dim() == 0:
        raise Unsupported(f"{name} must have a packed dim")
    if not all(isinstance(s, int) for s in t.shape[1:]):
        raise Unsupported(f"symbolic (dynamic) trailing dims of {name} are not supported")
    return tuple(t.shape)


def rows_view(x: torch.Tensor, dims: Sequence[int]) -> torch.Tensor:
    """x as a contiguous [rows, row_length] matrix: kept dims (in order) index rows, `dims` the columns."""
    if x.dim() == 0:
        return x.reshape(1, 1)
    kept = [d for d in range(x.dim()) if d not in dims]
    rows = math.prod(x.shape[d] for d in kept)
    length = math.prod(x.shape[d] for d in dims)
    return x.permute(*kept, *dims).reshape(rows, length).contiguous()


def kept_shape(shape: Sequence[int], dims: Sequence[int], keepdim: bool) -> tuple[int, ...]:
    """The output shape of reducing `dims` of `shape`."""
    if keepdim:
        return tuple(1 if d in dims else s for d, s in enumerate(shape))
    return tuple(s for d, s in enumerate(shape) if d not in dims)
