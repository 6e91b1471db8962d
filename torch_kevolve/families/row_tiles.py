"""The genome space and constraint shared by row kernels (reductions, softmax, norms): programs of
BLOCK_M rows walking them in BLOCK_N-wide tiles. Problems of such families name `row_length`."""
from __future__ import annotations

import triton

from ..key import Problem
from .base import Genome, GenomeSpace

SMALLEST_TILE = 16

ROW_TILES = GenomeSpace((
    ("BLOCK_M", (4, 1, 2, 8, 16)),
    ("BLOCK_N", (256, 64, 128, 512, 1024, 32, 16)),
    ("num_warps", (4, 1, 2, 8)),
    ("num_stages", (1, 2, 3)),
))


def tiles_fit(problem: Problem, genome: Genome) -> str | None:
    """Rejects BLOCK_N tiles wider than the rows need (they would only repeat a narrower genome)."""
    length = problem.dim("row_length")
    widest = max(SMALLEST_TILE, 1 << max(length - 1, 0).bit_length())
    if genome["BLOCK_N"] > widest:
        return f"BLOCK_N={genome['BLOCK_N']} is wider than rows of {length} need ({widest})"
    return None


def whole_tile_chunks(n: int, tile: int, split: int) -> tuple[int, int]:
    """(chunk, chunks): `n` items dealt in equal runs of whole `tile`s to at most `split` programs (the last run
    may be shorter; no chunks for n = 0)."""
    chunk = tile * max(1, triton.cdiv(n, split * tile))
    return chunk, triton.cdiv(n, chunk)
