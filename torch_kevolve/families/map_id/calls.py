"""The map_id calls the family accepts: kevolve::map_id(ids [n], vocabulary [length], rows [length], default_row)
with ids and vocabulary of one integer dtype (int32 / int64), rows int32 / int64, 1 <= length < 2^31, and
default_row representable in rows' dtype."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ...patterns import ops  # noqa: F401  (registers the kevolve pattern ops)
from ..base import Unsupported, one_device
from ..dims import static_shape
from ..schema import bind_arguments, dtype_name, dtype_named

MAP_ID = torch.ops.kevolve.map_id.default
INT_DTYPES = (torch.int32, torch.int64)
MAX_LENGTH = (1 << 31) - 1  # vocabulary positions are int32 in the kernels


@dataclass(frozen=True)
class MapIdCall:
    """One call: `ids` ids looked up in a vocabulary of `length` keys of `id_dtype`, rows of `row_dtype`."""

    ids: int
    length: int
    id_dtype: torch.dtype
    row_dtype: torch.dtype
    default_row: int

    def params(self) -> dict:
        return dict(dataclasses.asdict(self), id_dtype=dtype_name(self.id_dtype), row_dtype=dtype_name(self.row_dtype))

    @staticmethod
    def from_params(p: dict) -> "MapIdCall":
        return MapIdCall(**{**p, "id_dtype": dtype_named(p["id_dtype"]), "row_dtype": dtype_named(p["row_dtype"])})


def describe(overload, args: Sequence, kwargs: dict) -> tuple[MapIdCall, dict]:
    """The MapIdCall and the tensors by name (ids, vocabulary, rows); Unsupported if not ours."""
    if overload != MAP_ID:
        raise Unsupported(f"{overload} is not a map_id of this family")
    a = bind_arguments(overload, args, kwargs)
    ids, vocabulary, rows, default_row = a["ids"], a["vocabulary"], a["rows"], a["default_row"]
    for t, name in ((ids, "ids"), (vocabulary, "vocabulary"), (rows, "rows")):
        if t.dim() != 1:
            raise Unsupported(f"{name} must be 1-D")
        if t.dtype not in INT_DTYPES:
            raise Unsupported(f"{name} dtype {t.dtype} is not int32 / int64")
    if vocabulary.dtype != ids.dtype:
        raise Unsupported(f"ids ({ids.dtype}) and vocabulary ({vocabulary.dtype}) must share a dtype")
    (n,), (length,) = static_shape(ids, "ids"), static_shape(vocabulary, "vocabulary")
    if not 1 <= length <= MAX_LENGTH or static_shape(rows, "rows") != (length,):
        raise Unsupported(f"the vocabulary needs 1 to {MAX_LENGTH} keys and rows one per key")
    info = torch.iinfo(rows.dtype)
    if not info.min <= default_row <= info.max:
        raise Unsupported(f"default_row {default_row} does not fit rows' dtype {rows.dtype}")
    one_device(ids, vocabulary, rows)
    return MapIdCall(n, length, ids.dtype, rows.dtype, default_row), {"ids": ids, "vocabulary": vocabulary,
                                                                       "rows": rows}


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    call, t = describe(overload, args, kwargs)
    return Problem(
        family=family,
        op=str(overload),
        params=(),  # default_row changes neither the work nor the kernel: keys do not tell calls apart by it
        dims=(("ids", call.ids), ("length", call.length)),
        dtypes=(("ids", dtype_name(call.id_dtype)), ("rows", dtype_name(call.row_dtype))),
        contiguous=all(t[n].is_contiguous() for n in t),
        exact_dims=frozenset({"length"}),
    )
