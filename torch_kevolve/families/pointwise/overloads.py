"""The ATen overloads of the operator table, resolved: the family's registry (not kernel source)."""
from __future__ import annotations

import torch

from .table import OPS, PointwiseOp

aten = torch.ops.aten


def resolve(name: str) -> torch._ops.OpOverload:
    """The ATen overload `packet.overload` (a KeyError names a row that lists a missing overload)."""
    packet, _, overload = name.partition(".")
    return getattr(getattr(aten, packet), overload)


OP_OF_OVERLOAD: dict[torch._ops.OpOverload, PointwiseOp] = {resolve(o): op for op in OPS for o in op.overloads}
