"""The map_id family: problems, inputs, exact reference and roofline of kevolve::map_id (MapId's lookup)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ...patterns.ops import map_id_meaning
from ..base import KernelFamily
from ..tensor_inputs import generator
from . import calls
from .calls import MAP_ID
from .implementations import DECOMPOSITION, TRITON

# (ids, vocabulary length, ids' dtype, rows' dtype) of the example problems
EXAMPLES = [(300, 40, torch.int64, torch.int64), (97, 1, torch.int32, torch.int64),
            (64, 1000, torch.int32, torch.int32)]


def _vocabulary(length: int, dtype: torch.dtype, dist: str, g: torch.Generator, device) -> torch.Tensor:
    """`length` sorted keys: spread over the dtype's range (edge: the range's ends and repeated keys among
    them; large: half of them clustered, so that radix buckets are uneven)."""
    info = torch.iinfo(dtype)
    keys = torch.randint(info.min, info.max, (length,), generator=g, device=device, dtype=torch.int64)
    if dist == "edge" and length > 2:
        keys[:2] = torch.tensor([info.min, info.max], device=device)
        keys[2::5] = keys[2]
    elif dist == "large":
        keys[: length // 2] = keys[0] + torch.arange(length // 2, device=device)
    return keys.clamp(info.min, info.max).sort().values.to(dtype)


def _ids(n: int, vocabulary: torch.Tensor, dist: str, g: torch.Generator) -> torch.Tensor:
    """`n` ids: about half of them keys of the vocabulary, the others drawn over the dtype's range (edge: also
    the keys' neighbours and the range's ends)."""
    info, device = torch.iinfo(vocabulary.dtype), vocabulary.device
    ids = torch.randint(info.min, info.max, (n,), generator=g, device=device, dtype=torch.int64)
    known = torch.rand(n, generator=g, device=device) < 0.5
    picks = vocabulary[torch.randint(0, vocabulary.numel(), (n,), generator=g, device=device)].to(torch.int64)
    if dist == "edge":
        picks = picks + torch.randint(-1, 2, (n,), generator=g, device=device)
        ids[::7] = info.min
        ids[3::7] = info.max
    return torch.where(known, picks, ids).clamp(info.min, info.max).to(vocabulary.dtype)


@dataclass
class MapIdFamily(KernelFamily):
    """kevolve::map_id: int32 / int64 ids and vocabulary of one dtype, int32 / int64 rows, 1 to 2^31 - 1 keys."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return calls.problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """A sorted vocabulary (_vocabulary), ids (_ids), rows drawn over the rows' dtype and the vocabulary's
        length as default_row (MapId's convention), in schema order."""
        g = generator(seed, device)
        n, length = problem.dim("ids"), problem.dim("length")
        vocabulary = _vocabulary(length, problem.dtype("ids"), dist, g, device)
        rows_dtype = problem.dtype("rows")
        info = torch.iinfo(rows_dtype)
        rows = torch.randint(info.min, info.max, (length,), generator=g, device=device, dtype=torch.int64)
        return _ids(n, vocabulary, dist, g), vocabulary, rows.to(rows_dtype), min(length, info.max)

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        """MapId's ATen ops on CPU (exact)."""
        ids, vocabulary, rows, default_row = args
        return (map_id_meaning(ids.cpu(), vocabulary.cpu(), rows.cpu(), default_row),)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return (0,)

    def bytes_moved(self, problem: Problem) -> int:
        """Ids read and rows written once; of the vocabulary and its rows, every entry, or one per id when the
        ids are fewer."""
        n, length = problem.dim("ids"), problem.dim("length")
        id_size, row_size = problem.dtype("ids").itemsize, problem.dtype("rows").itemsize
        return n * (id_size + row_size) + min(n, length) * (id_size + row_size)

    def example_problems(self, overload) -> tuple[Problem, ...]:
        problems = []
        for n, length, id_dtype, row_dtype in EXAMPLES:
            ids, vocabulary = torch.zeros(n, dtype=id_dtype), torch.zeros(length, dtype=id_dtype)
            problems.append(self.problem(MAP_ID, (ids, vocabulary, torch.zeros(length, dtype=row_dtype), length), {}))
        return tuple(problems)


MAP_ID_FAMILY = MapIdFamily(
    name="map_id",
    version="1",
    overloads=(MAP_ID,),
    implementations=(TRITON, DECOMPOSITION),
    inductor_fuses=True,
)
