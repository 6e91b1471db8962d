"""The genome space and constraint shared by segment kernels (jagged conversions, segment reductions):
programs walking the rows of a segment BLOCK_N at a time over BLOCK_D columns of the inner dim.
Problems of such families name `inner`."""
from __future__ import annotations

from ..key import Problem
from .base import Genome, GenomeSpace
from .row_tiles import SMALLEST_TILE

SEGMENT_TILES = GenomeSpace((
    ("BLOCK_N", (16, 4, 8, 32, 64)),
    ("BLOCK_D", (128, 64, 32, 16, 256)),
    ("num_warps", (4, 1, 2, 8)),
    ("num_stages", (1, 2, 3)),
))


def inner_tiles_fit(problem: Problem, genome: Genome) -> str | None:
    """Rejects BLOCK_D tiles wider than the inner dim needs (they would only repeat a narrower genome)."""
    inner, block = problem.dim("inner"), genome["BLOCK_D"]
    if block // 2 >= max(inner, SMALLEST_TILE):  # half the tile would cover it
        return f"BLOCK_D={block} is wider than an inner dim of {inner} needs"
    return None
