"""The linear+ReLU calls the family accepts: kevolve::addmm_relu(bias, a, b) = relu(bias + a @ b), fp32 only
(the ReLU epilogue runs in the pre-split 3xTF32 kernel), with addmm's operand and bias rules (calls.py)."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import torch

from ...key import Problem
from ...patterns import ops  # noqa: F401  (registers the kevolve pattern ops)
from ..base import Unsupported
from ..schema import bind_arguments
from . import calls
from .calls import GemmCall

ADDMM_RELU = torch.ops.kevolve.addmm_relu.default


def _as_addmm(overload, args: Sequence, kwargs: dict) -> tuple:
    if overload != ADDMM_RELU:
        raise Unsupported(f"{overload} is not a linear+ReLU of this family")
    bound = bind_arguments(overload, args, kwargs)
    return bound["bias"], bound["a"], bound["b"]


def describe(overload, args: Sequence, kwargs: dict) -> tuple[GemmCall, dict]:
    """The call as addmm's GemmCall (beta = alpha = 1) and its tensors by name; Unsupported if not ours."""
    call, tensors = calls.describe(calls.ADDMM, _as_addmm(overload, args, kwargs), {})
    if call.dtype != torch.float32:
        raise Unsupported(f"the ReLU epilogue kernel takes fp32 operands, not {call.dtype}")
    return call, tensors


def problem(family: str, overload, args: Sequence, kwargs: dict) -> Problem:
    """addmm's Problem for the same operands, named after the linear+ReLU op."""
    describe(overload, args, kwargs)
    return dataclasses.replace(calls.problem(family, calls.ADDMM, _as_addmm(overload, args, kwargs), {}),
                               op=str(overload))
