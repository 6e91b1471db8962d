"""Kernel families: what each owns (ATen overloads, or kevolve pattern ops), and the lookup from an overload to its family."""
from __future__ import annotations

import torch

from .base import KernelFamily
from .batch_norm.family import BATCH_NORM
from .bucketize.family import BUCKETIZE
from .embedding_bag import EMBEDDING_BAG, EMBEDDING_BAG_BACKWARD
from .embedding_bags import EMBEDDING_BAGS, EMBEDDING_BAGS_BACKWARD
from .embedding_bags.stack_forms import LAYOUT_FORMS  # noqa: F401  ((layout op, implementation name) -> LayoutForm)
from .fm_interaction.family import FM_INTERACTION
from .gemm.family import GEMM
from .group_norm.family import GROUP_NORM
from .index_select.family import GATHER
from .interaction.family import INTERACTION
from .jagged.family import JAGGED
from .keep_last.family import KEEP_LAST_FAMILY
from .layer_norm.family import LAYER_NORM
from .map_id.family import MAP_ID_FAMILY
from .nll_loss.family import NLL_LOSS
from .pointwise import POINTWISE
from .reduction.family import REDUCTION
from .scan.family import SCAN
from .segment_reduce.family import SEGMENT_REDUCE
from .softmax.family import SOFTMAX

FAMILIES: tuple[KernelFamily, ...] = (
    EMBEDDING_BAG, EMBEDDING_BAG_BACKWARD, POINTWISE, REDUCTION, SOFTMAX, LAYER_NORM, NLL_LOSS, BATCH_NORM, GROUP_NORM,
    SCAN, GATHER, JAGGED, SEGMENT_REDUCE, BUCKETIZE, INTERACTION, EMBEDDING_BAGS, EMBEDDING_BAGS_BACKWARD,
    FM_INTERACTION, GEMM, MAP_ID_FAMILY, KEEP_LAST_FAMILY,
)

_BY_OVERLOAD = {overload: family for family in FAMILIES for overload in family.overloads}


def family_for(overload: torch._ops.OpOverload) -> KernelFamily | None:
    """The family that implements `overload`, or None."""
    return _BY_OVERLOAD.get(overload)
