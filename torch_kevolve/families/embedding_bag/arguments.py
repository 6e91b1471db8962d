"""The calls the embedding-bag families accept, and the Problem each describes."""
from __future__ import annotations

from typing import Sequence

import torch

from ...key import Problem
from ..base import Unsupported, one_device
from ..schema import bind_arguments

MODES = {0: "sum", 1: "mean", 2: "max"}
MODE_SUM, MODE_MEAN, MODE_MAX = 0, 1, 2
VALUE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
INDEX_DTYPES = (torch.int32, torch.int64)
DEVICE_TYPES = ("cpu", "cuda")


def reject_unsupported_flags(scale_grad_by_freq: bool, sparse: bool) -> None:
    """Raise Unsupported for the training flags no kernel of these families implements."""
    if scale_grad_by_freq:
        raise Unsupported("scale_grad_by_freq=True is not supported")
    if sparse:
        raise Unsupported("sparse=True (sparse weight gradient) is not supported")


def forward_problem(family: str, overload: torch._ops.OpOverload, args: Sequence, kwargs: dict) -> Problem:
    """The Problem of an `aten._embedding_bag` call; Unsupported if the call is outside the family."""
    a = bind_arguments(overload, args, kwargs)
    reject_unsupported_flags(a["scale_grad_by_freq"], a["sparse"])
    mode = _mode(a["mode"])
    weight, indices, offsets = a["weight"], a["indices"], a["offsets"]
    num_weights, dim = _static_shape(weight, "weight", rank=2)
    _check_values(weight, "weight")
    if not weight.is_contiguous():
        raise Unsupported("weight must be contiguous")
    (num_indices,) = _check_indices(indices, "indices")
    (num_offsets,) = _check_indices(offsets, "offsets", like=indices)
    include_last_offset = bool(a["include_last_offset"])
    num_bags = num_offsets - int(include_last_offset)
    psw = a["per_sample_weights"]
    _check_per_sample_weights(psw, mode, weight, num_indices)
    _check_device(weight, indices, offsets, psw)
    _check_extents(num_bags, dim)
    return Problem(
        family=family,
        op=str(overload),
        params=_params(mode, psw, include_last_offset, a["padding_idx"]),
        dims=(("num_weights", num_weights), ("dim", dim), ("num_indices", num_indices), ("num_bags", num_bags)),
        dtypes=(("weight", _name(weight.dtype)), ("index", _name(indices.dtype))),
        exact_dims=frozenset({"dim"}),
    )


def backward_problem(family: str, overload: torch._ops.OpOverload, args: Sequence, kwargs: dict) -> Problem:
    """The Problem of an `aten._embedding_bag_backward` / `_embedding_bag_dense_backward` call."""
    a = bind_arguments(overload, args, kwargs)
    reject_unsupported_flags(a["scale_grad_by_freq"], a.get("sparse", False))
    mode = _mode(a["mode"])
    grad, indices, offset2bag = a["grad"], a["indices"], a["offset2bag"]
    num_bags, dim = _static_shape(grad, "grad", rank=2)
    _check_values(grad, "grad")
    (num_indices,) = _check_indices(indices, "indices")
    num_weights = a["num_weights"]
    if not isinstance(num_weights, int):
        raise Unsupported("symbolic (dynamic) num_weights is not supported")
    if "offsets" in a:
        (num_offsets,) = _check_indices(a["offsets"], "offsets", like=indices)
        if num_offsets not in (num_bags, num_bags + 1):
            raise Unsupported(f"offsets has {num_offsets} entries for {num_bags} bags")
        include_last_offset = num_offsets == num_bags + 1
    else:
        (offset2bag_len,) = _check_indices(offset2bag, "offset2bag")
        if offset2bag_len != num_indices:
            raise Unsupported(
                f"_embedding_bag_dense_backward needs offset2bag for every index ({offset2bag_len} != {num_indices})"
            )
        include_last_offset = False  # not observable without offsets, and irrelevant to the gradient
    if mode == MODE_MAX:
        max_indices = a["maximum_indices"]
        if _static_shape(max_indices, "maximum_indices", rank=2) != (num_bags, dim):
            raise Unsupported("max mode needs maximum_indices of shape [num_bags, dim]")
        if max_indices.dtype not in INDEX_DTYPES:
            raise Unsupported(f"maximum_indices dtype {max_indices.dtype} is not int32/int64")
    psw = a["per_sample_weights"]
    _check_per_sample_weights(psw, mode, grad, num_indices)
    _check_device(grad, indices, offset2bag, psw, a.get("offsets"))
    _check_extents(num_bags, dim)
    return Problem(
        family=family,
        op=str(overload),
        params=_params(mode, psw, include_last_offset, a["padding_idx"]),
        dims=(("num_weights", num_weights), ("dim", dim), ("num_indices", num_indices), ("num_bags", num_bags)),
        dtypes=(("grad", _name(grad.dtype)), ("index", _name(indices.dtype))),
        exact_dims=frozenset({"dim"}),
        contiguous=grad.is_contiguous(),
    )


def _params(mode: int, psw, include_last_offset: bool, padding_idx: int) -> tuple:
    return (
        ("mode", mode),
        ("per_sample_weights", psw is not None),
        ("include_last_offset", include_last_offset),
        ("padding_idx", padding_idx if padding_idx >= 0 else -1),
    )


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _mode(mode) -> int:
    if mode not in MODES:
        raise Unsupported(f"mode {mode!r} is not 0 (sum), 1 (mean) or 2 (max)")
    return mode


def _static_shape(t: torch.Tensor, name: str, rank: int) -> tuple[int, ...]:
    if t.dim() != rank:
        raise Unsupported(f"{name} must be {rank}-D, got {t.dim()}-D")
    if not all(isinstance(s, int) for s in t.shape):
        raise Unsupported(f"symbolic (dynamic) shape of {name} is not supported")
    return tuple(t.shape)


def _check_values(t: torch.Tensor, name: str) -> None:
    if t.dtype not in VALUE_DTYPES:
        raise Unsupported(f"{name} dtype {t.dtype} is not float32/float16/bfloat16")


def _check_indices(t: torch.Tensor, name: str, like: torch.Tensor | None = None) -> tuple[int]:
    shape = _static_shape(t, name, rank=1)
    if t.dtype not in INDEX_DTYPES:
        raise Unsupported(f"{name} dtype {t.dtype} is not int32/int64")
    if like is not None and t.dtype != like.dtype:
        raise Unsupported(f"{name} dtype {t.dtype} differs from indices dtype {like.dtype}")
    if not t.is_contiguous():
        raise Unsupported(f"{name} must be contiguous")
    return shape


def _check_per_sample_weights(psw, mode: int, values: torch.Tensor, num_indices: int) -> None:
    if psw is None:
        return
    if mode != MODE_SUM:
        raise Unsupported("per_sample_weights is only defined for mode sum")
    if _static_shape(psw, "per_sample_weights", rank=1) != (num_indices,):
        raise Unsupported("per_sample_weights must have one entry per index")
    if psw.dtype != values.dtype or not psw.is_contiguous():
        raise Unsupported(f"per_sample_weights must be contiguous with dtype {values.dtype}")


def _check_device(*tensors) -> None:
    device = one_device(*tensors)
    if device.type not in DEVICE_TYPES:
        raise Unsupported(f"device {device} is not cpu or cuda")


def _check_extents(num_bags: int, dim: int) -> None:
    if num_bags < 1:
        raise Unsupported("no bags")
    if dim < 1:
        raise Unsupported("zero-width embedding rows")
