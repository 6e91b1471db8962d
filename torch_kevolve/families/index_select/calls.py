"""The gather calls the family accepts, in normal form, and the Problem each describes.

index_select and embedding both pick slices of x viewed as [outer, length, inner] along its middle
dim: out[o, j, i] = x[o, index[j], i] (embedding: outer 1, length num_weights, inner embedding dim).
embedding_dense_backward sums gradient rows back into the [num_weights, dim] table.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import Unsupported
from ..dims import static_shape, wrap_dim
from ..reduction.spec import FLOAT_DTYPES, INT_DTYPES
from ..schema import bind_arguments, dtype_name
from ..softmax.calls import split

aten = torch.ops.aten
INDEX_SELECT, EMBEDDING, EMBEDDING_BACKWARD = (aten.index_select.default, aten.embedding.default,
                                               aten.embedding_dense_backward.default)
INDEX_DTYPES = (torch.int32, torch.int64)


@dataclass(frozen=True)
class GatherCall:
    """One call: the [outer, length, inner] split, the number of indices, the output shape, and for
    the backward the padding row."""

    backward: bool
    outer: int
    length: int
    inner: int
    count: int  # indices
    out_shape: tuple[int, ...]
    padding_idx: int

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), out_shape=list(self.out_shape))

    @staticmethod
    def from_params(p: dict) -> "GatherCall":
        return GatherCall(**{**p, "out_shape": tuple(p["out_shape"])})


def describe(overload, args: Sequence, kwargs: dict) -> tuple[GatherCall, dict]:
    """The GatherCall and the call's tensors by name (values, index); Unsupported if not ours."""
    if overload not in (INDEX_SELECT, EMBEDDING, EMBEDDING_BACKWARD):
        raise Unsupported(f"{overload} is not a gather of this family")
    a = bind_arguments(overload, args, kwargs)
    if overload == INDEX_SELECT:
        values, index = a["self"], a["index"]
        shape = static_shape(values, "self")
        if index.dim() > 1:
            raise Unsupported("index_select takes a 0-d or 1-D index")
        dim = wrap_dim(a["dim"], len(shape))
        outer, length, inner = split(shape, dim)
        out_shape = tuple(shape[:dim]) + (index.numel(),) + tuple(shape[dim + 1:]) if shape else ()
        call = GatherCall(False, outer, length, inner, index.numel(), out_shape, -1)
    else:
        values = a["weight"] if overload == EMBEDDING else a["grad_output"]
        index = a["indices"]
        if a["scale_grad_by_freq"] or a.get("sparse"):
            raise Unsupported("scale_grad_by_freq and sparse gradients are not supported")
        count = index.numel()
        if overload == EMBEDDING:
            if values.dim() != 2:
                raise Unsupported("embedding takes a 2-D weight")
            length, inner = static_shape(values, "weight")
            out_shape = tuple(index.shape) + (inner,)
            call = GatherCall(False, 1, length, inner, count, out_shape, -1)
        else:
            num_weights = a["num_weights"]
            inner = values.shape[-1] if values.dim() else 0
            if not isinstance(num_weights, int) or tuple(values.shape) != tuple(index.shape) + (inner,):
                raise Unsupported("grad_output must be indices.shape + [dim] and num_weights static")
            padding = a["padding_idx"]  # negative: no padding row (F.embedding has made real ones positive)
            call = GatherCall(True, 1, num_weights, inner, count, (num_weights, inner), max(padding, -1))
    if index.dtype not in INDEX_DTYPES:
        raise Unsupported(f"index dtype {index.dtype} is not int32/int64")
    if values.dtype not in FLOAT_DTYPES + INT_DTYPES or call.backward and values.dtype not in FLOAT_DTYPES:
        raise Unsupported(f"dtype {values.dtype} is not supported here")
    return call, {"values": values, "index": index}


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, t = describe(overload, args, kwargs)
    return Problem(
        family=family,
        op=str(overload),
        params=(("inner_is_one", call.inner == 1), ("padding_idx", call.padding_idx), ("index_rank", t["index"].dim()),
                ("values_rank", t["values"].dim())),
        dims=(("outer", call.outer), ("length", call.length), ("inner", call.inner), ("count", call.count)),
        dtypes=(("values", dtype_name(t["values"].dtype)), ("index", dtype_name(t["index"].dtype))),
        contiguous=t["values"].is_contiguous(),
        exact_dims=frozenset({"inner"}) if overload != INDEX_SELECT else frozenset(),
    )
