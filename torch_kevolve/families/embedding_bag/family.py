"""The embedding-bag forward and dense-backward families: problems, inputs, references, rooflines."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...key import Problem
from ..base import KernelFamily
from . import inputs
from .arguments import MODE_MAX, MODE_MEAN, MODES, backward_problem, forward_problem
from .implementations import BACKWARD_DECOMPOSITION, BACKWARD_TRITON, FORWARD_DECOMPOSITION, FORWARD_TRITON

aten = torch.ops.aten


def _element_size(dtype: torch.dtype) -> int:
    return torch.empty(0, dtype=dtype).element_size()


@dataclass
class EmbeddingBagFamily(KernelFamily):
    """`aten._embedding_bag`: sum/mean/max bags of table rows, with ATen's auxiliary outputs.

    Empty bags give zeros; max mode's max_indices hold -1 for bags without non-padding indices
    (ATen CUDA's convention; ATen CPU's backward skips those bags through bag_size).
    """

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return forward_problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        indices, offsets = inputs.bags(problem, dist, seed)
        g = inputs.generator(seed, device)
        reach = inputs.longest_bag(offsets, problem.dim("num_bags"), problem.dim("num_indices"))
        dims = (problem.dim("num_weights"), problem.dim("dim"))
        weight = inputs.table(dims, dist, reach, problem.dtype("weight"), g, device)
        psw = None
        if problem.param("per_sample_weights"):
            psw = inputs.sample_weights(problem.dim("num_indices"), dist, problem.dtype("weight"), g, device)
        index_dtype = problem.dtype("index")
        return (
            weight,
            indices.to(device, index_dtype),
            offsets.to(device, index_dtype),
            False,
            problem.param("mode"),
            False,
            psw,
            problem.param("include_last_offset"),
            problem.param("padding_idx"),
        )

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        weight, indices, offsets, scale_grad_by_freq, mode, sparse, psw, include_last_offset, padding_idx = args
        output, offset2bag, bag_size, max_indices = aten._embedding_bag(
            weight.detach().cpu().double(),
            indices.cpu(),
            offsets.cpu(),
            scale_grad_by_freq,
            mode,
            sparse,
            None if psw is None else psw.detach().cpu().double(),
            include_last_offset,
            padding_idx,
        )
        if mode == MODE_MAX:
            max_indices = torch.where(bag_size[:, None] > 0, max_indices, -1)
        return output, offset2bag, bag_size, max_indices

    def example_problems(self, overload) -> tuple[Problem, ...]:
        """Sum, mean and max bags of 3 rows over a 64 x 16 fp32 table."""
        weight, indices, offsets = torch.zeros(64, 16), torch.zeros(96, dtype=torch.int64), torch.arange(0, 96, 3)
        return tuple(self.problem(overload, (weight, indices, offsets, False, mode, False, None, False, -1), {})
                     for mode in MODES)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        mode = problem.param("mode")
        if mode == MODE_MAX:
            checked = (0, 1, 2, 3)
        elif mode == MODE_MEAN:
            checked = (0, 1, 2)
        else:
            return (0,)
        # ATen CUDA shapes bag_size like offsets: with include_last_offset it has one slot more.
        if problem.param("include_last_offset"):
            return tuple(i for i in checked if i != 2)
        return checked

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        """The longest bag of these inputs."""
        return inputs.longest_bag(args[2], problem.dim("num_bags"), problem.dim("num_indices"))

    def bytes_moved(self, problem: Problem) -> int:
        """Indices and offsets, per-sample weights, the distinct table rows the lookups are expected to touch
        (inputs.rows_touched) and the pooled rows."""
        n, b, d = problem.dim("num_indices"), problem.dim("num_bags"), problem.dim("dim")
        value, index = _element_size(problem.dtype("weight")), _element_size(problem.dtype("index"))
        indices = (n + b + problem.param("include_last_offset")) * index
        psw = n * value if problem.param("per_sample_weights") else 0
        return indices + psw + inputs.rows_touched(n, problem.dim("num_weights")) * d * value + b * d * value


@dataclass
class EmbeddingBagBackwardFamily(KernelFamily):
    """Dense weight gradient of `_embedding_bag` (`_embedding_bag_backward`, `_embedding_bag_dense_backward`)."""

    def problem(self, overload, args: Sequence, kwargs: dict) -> Problem:
        self.check_overload(overload)
        return backward_problem(self.name, overload, args, kwargs)

    def make_inputs(self, problem: Problem, seed: int, dist: str, device: torch.device) -> tuple:
        """Bags and per-sample weights as the forward family draws them, the auxiliary tensors from
        ATen's forward on `device` (max_indices -1 for empty bags), and a random grad."""
        indices, offsets = inputs.bags(problem, dist, seed)
        mode, padding_idx = problem.param("mode"), problem.param("padding_idx")
        num_weights, dim, num_bags = problem.dim("num_weights"), problem.dim("dim"), problem.dim("num_bags")
        dtype, index_dtype = problem.dtype("grad"), problem.dtype("index")
        indices, offsets = indices.to(device, index_dtype), offsets.to(device, index_dtype)
        g = inputs.generator(seed, device)
        table = inputs.table((num_weights, dim if mode == MODE_MAX else 1), dist, 1, torch.float64, g, device)
        _, offset2bag, bag_size, max_indices = aten._embedding_bag(
            table, indices, offsets, False, mode, False, None, problem.param("include_last_offset"), padding_idx
        )
        if mode == MODE_MAX:
            max_indices = torch.where(bag_size[:num_bags, None] > 0, max_indices, -1)
        reach = inputs.most_repeats(indices.cpu())
        if problem.contiguous:
            grad = inputs.values((num_bags, dim), dist, reach, dtype, g, device)
        else:
            grad = inputs.values((dim, num_bags), dist, reach, dtype, g, device).t()
        psw = None
        if problem.param("per_sample_weights"):
            psw = inputs.sample_weights(problem.dim("num_indices"), dist, dtype, g, device)
        if problem.op == str(aten._embedding_bag_dense_backward.default):
            return (grad, indices, offset2bag, bag_size, max_indices, num_weights, False, mode, psw, padding_idx)
        return (grad, indices, offsets, offset2bag, bag_size, max_indices, num_weights, False, mode, False, psw, padding_idx)

    def reference(self, problem: Problem, args: Sequence) -> tuple[torch.Tensor, ...]:
        """ATen's CPU backward in float64; bag_size cut to one entry per bag (CUDA's has a spare)."""
        if problem.op == str(aten._embedding_bag_dense_backward.default):
            grad, indices, offset2bag, bag_size, max_indices, num_weights, sgbf, mode, psw, padding_idx = args
            offsets = None
        else:
            grad, indices, offsets, offset2bag, bag_size, max_indices, num_weights, sgbf, mode, _, psw, padding_idx = args
        cpu = dict(
            grad=grad.detach().cpu().double(),
            indices=indices.cpu(),
            offset2bag=offset2bag.cpu(),
            bag_size=bag_size[: grad.shape[0]].cpu(),
            maximum_indices=max_indices.cpu(),
            num_weights=num_weights,
            scale_grad_by_freq=sgbf,
            mode=mode,
            per_sample_weights=None if psw is None else psw.detach().cpu().double(),
            padding_idx=padding_idx,
        )
        if offsets is None:
            return (aten._embedding_bag_dense_backward(**cpu),)
        return (aten._embedding_bag_backward(offsets=offsets.cpu(), sparse=False, **cpu),)

    def example_problems(self, overload) -> tuple[Problem, ...]:
        """Sum, mean and max gradients of 32 bags of 3 rows of a 64 x 16 fp32 table."""
        grad, indices, offsets = torch.zeros(32, 16), torch.zeros(96, dtype=torch.int64), torch.arange(0, 96, 3)
        problems = []
        for mode in MODES:
            max_indices = torch.zeros((32, 16) if mode == MODE_MAX else (32,), dtype=torch.int64)
            if overload == aten._embedding_bag_dense_backward.default:
                args = (grad, indices, indices, offsets, max_indices, 64, False, mode, None, -1)
            else:
                args = (grad, indices, offsets, indices, offsets, max_indices, 64, False, mode, False, None, -1)
            problems.append(self.problem(overload, args, {}))
        return tuple(problems)

    def checked_outputs(self, problem: Problem) -> tuple[int, ...]:
        return (0,)

    def reduced_extent(self, problem: Problem, args: Sequence) -> int:
        """The most uses of one table row in these inputs."""
        return inputs.most_repeats(args[1])

    def bytes_moved(self, problem: Problem) -> int:
        n, b, d = problem.dim("num_indices"), problem.dim("num_bags"), problem.dim("dim")
        value, index = _element_size(problem.dtype("grad")), _element_size(problem.dtype("index"))
        if problem.param("mode") == MODE_MAX:
            reads = b * d * (value + index)
        else:
            reads = b * d * value + (n + b) * index  # each bag's gradient row, read once per bag
        psw = n * value if problem.param("per_sample_weights") else 0
        return reads + psw + problem.dim("num_weights") * d * value


EMBEDDING_BAG = EmbeddingBagFamily(
    name="embedding_bag",
    version="1",
    overloads=(aten._embedding_bag.default, aten._embedding_bag_forward_only.default),
    implementations=(FORWARD_TRITON, FORWARD_DECOMPOSITION),
    dynamic_dims=frozenset({"num_indices", "num_bags"}),
    dynamic_implementations=frozenset({FORWARD_TRITON.name, FORWARD_DECOMPOSITION.name}),
)

EMBEDDING_BAG_BACKWARD = EmbeddingBagBackwardFamily(
    name="embedding_bag_backward",
    version="1",
    overloads=(aten._embedding_bag_backward.default, aten._embedding_bag_dense_backward.default),
    implementations=(BACKWARD_TRITON, BACKWARD_DECOMPOSITION),
    dynamic_dims=frozenset({"num_indices", "num_bags"}),
    dynamic_implementations=frozenset({BACKWARD_TRITON.name, BACKWARD_DECOMPOSITION.name}),
)
