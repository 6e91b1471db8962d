"""The reduction family: problems, inputs, float64 references and rooflines of ATen's reductions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import KernelFamily
from ..schema import bind_arguments, call_in_schema_order, overload_named, with_keyword_only
from ..tensor_inputs import generator, random_tensor
from . import spec
from .implementations import DECOMPOSITION, TRITON, remembered_arguments

aten = torch.ops.aten
INT_DIM_OVERLOADS = (aten.prod.dim_int, aten.argmax.default, aten.argmin.default, aten.any.dim, aten.all.dim,
                     aten.max.dim, aten.min.dim, aten.count_nonzero.default)


@dataclass
class ReductionFamily(KernelFamily):
    """Reductions of a tensor over some dims (or all): each output element reduces one row of the
    [rows, row_length] view. NaNs propagate as in ATen (argmax/argmin point at the first NaN)."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return spec.problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """A [rows, row_length] tensor reduced over its last dim ([row_length, rows] over its first when
        the problem's dims lead), transposed when the problem is strided; 1-D for full reductions."""
        overload = overload_named(problem.op)
        rows, length = problem.dim("rows"), problem.dim("row_length")
        shape = (rows, length) if problem.param("dims_last") else (length, rows)
        g = generator(seed, device)
        dtype = problem.dtype("self")
        if problem.contiguous:
            x = random_tensor(shape, dist, dtype, g, device, length)
        else:
            x = random_tensor(shape[::-1], dist, dtype, g, device, length).t()
        dim_name = spec.OVERLOADS[overload][1]
        if dim_name is None:
            return (x,)
        dim = 1 if problem.param("dims_last") else 0
        args = [x, dim if overload in INT_DIM_OVERLOADS else [dim]]
        if overload == aten.linalg_vector_norm.default:
            args.insert(1, problem.param("order"))
        if not any(a.name == "keepdim" and a.kwarg_only for a in overload._schema.arguments):
            args.append(problem.param("keepdim"))
        return tuple(args)

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        overload = overload_named(problem.op)
        kwargs = remembered_arguments(problem)
        x = args[0].detach().cpu()
        if x.is_floating_point() or problem.dtype("out").is_floating_point:
            x, kwargs["dtype"] = x.double(), torch.float64
        # Arguments may come positionally in schema order, keyword-only ones included (rewritten nodes).
        bound = bind_arguments(overload, [x, *args[1:]], with_keyword_only(overload, {}, kwargs))
        if "dtype" in bound and "dtype" in kwargs:
            bound["dtype"] = kwargs["dtype"]
        out = call_in_schema_order(overload, [bound[a.name] for a in overload._schema.arguments])
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return (0, 1) if overload_named(problem.op) in spec.COMPANIONS else (0,)

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        return problem.dim("row_length")

    def bytes_moved(self, problem: Problem) -> int:
        rows, length = problem.dim("rows"), problem.dim("row_length")
        return rows * length * problem.dtype("self").itemsize + rows * problem.dtype("out").itemsize


REDUCTION = ReductionFamily(
    name="reduction",
    version="2",
    overloads=tuple(spec.OVERLOADS),
    implementations=(TRITON, DECOMPOSITION),
)
