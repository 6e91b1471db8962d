"""Triton gradient of a max or min segment reduction that reads each held row of data once.

ATen gives a row of segment s the output's gradient where the row equals the output (or is NaN), divided by the
number of such rows when there are several and the gradient is positive. triton_kernel's backward therefore
reads a segment's rows twice: once to count those rows, once to write the gradient, 1.5x the bytes of one pass
(66% of copy on the H100 for 4096 segments of up to 200 rows of 128 floats, at the copy rate for the bytes it
reads). Here program (s, j) handles segment s over columns [j * BLOCK_D, (j + 1) * BLOCK_D), found from its ends as in
ends_forward (lengths cost a scan, with no zero-fill or concatenation):
- rows past the first RESIDENT_ROWS (segments longer than that) come first, BLOCK_N at a time, while nothing
  else is live. With TAIL_PASSES 2 they are counted, and written after the held rows; with 1 they are counted
  and written at once, as if each were the only row taking the gradient, and read again only in columns where
  the gradient turns out shared (divided): here, or with MEND_SHARED by shared_tail_kernel, launched after, to
  which each program leaves the number of such columns and their divided gradients. Their hits are summed over
  rows once, after the loop: a sum per step crosses warps (the rows of a tile lie in several).
- the first RESIDENT_ROWS rows: one tile held in registers, counted, then written with the gradient divided by
  the segment's whole count; its element offsets are int32 from the segment's first row (the registers ptxas
  gives the kernel drop from 188 to 120-138 at 32 values per thread).
Rows before the first segment and after the last get 0, as in triton_kernel.
The tail loop is pipelined num_stages deep through tl.range (a loop without a dot stays unpipelined whatever the
launch's num_stages). On the H100 (Triton 3.6, bf16, the jagged benchmark's layout) 3 stages took the kernel in
Inductor's graph from 76 registers to 64 and the gradient from 101.3 to 95.2 us; ncu finds it about as busy issuing
integer instructions (ALU 65%) as moving bytes (DRAM 62%), and the rewrite loop costs about 9 us (without it: 86.3 us,
wrong where a tail ties). With MEND_SHARED it had 61 registers in Inductor's graph and took 82.3-82.8 us, but
shared_tail_kernel's first two forms, one program per program of this kernel, took 20.0 and 12.2 us (107.2 and
100.0 us with the scan, against 95.2 without MEND_SHARED; benchmarks/results/README.md, thirty-third session): too
many small programs, each a chain of dependent loads. The form here batches SHARED_TAIL_PROGRAMS programs' flags into
each of its programs; it is not measured yet, so MEND_SHARED is not the default.
Measured and dropped (benchmarks/results/README.md, thirty-first session): zero-filling the gradient first and writing
only the elements that take it (bf16 131.6 us against 101.6).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import SegmentCall
from .ends_forward import _ends_program, _segment_bounds, segment_ends
from .triton_kernel import _tile, _zero_rows, allocate

SHARED_TAIL_PROGRAMS = 16  # one_pass_backward_kernel programs whose flags a shared_tail_kernel program takes
SHARED_TAIL_ROWS = 128  # its tail rows of one column a step
SHARED_TAIL_FEW = 4  # columns of a program it reads one at a time; more, it reads the program's tail whole


@triton.jit
def _takes_gradient(x, target, mask):
    """Which elements of the tile x get the output's gradient: those equal to their segment's output `target`
    (broadcast to x; the arg max or min), or NaN."""
    return ((x == target) | (x != x)) & mask


@triton.jit
def one_pass_backward_kernel(
    grad_ptr,  # [segments, inner] gradient of the output
    output_ptr,  # [segments, inner] the forward's output
    data_ptr,  # [rows, inner] the forward's input, contiguous
    index_ptr,  # ends_forward.segment_ends: the lengths' running sum [segments] (BY_LENGTHS) or offsets
    grad_in_ptr,  # [rows, inner] contiguous, every row written
    shared_ptr,  # MEND_SHARED: [segments, column blocks] int32, the columns the program leaves shared_tail_kernel
    divided_ptr,  # MEND_SHARED: [segments, inner] like grad_in: the divided gradient a column's tail owes, else NaN
    segments,
    rows,
    inner,
    BY_LENGTHS: tl.constexpr,
    RESIDENT_ROWS: tl.constexpr,
    TAIL_PASSES: tl.constexpr,  # 2: count the tail, then write it; 1: write it while counting, fix it if shared
    MEND_SHARED: tl.constexpr,  # TAIL_PASSES 1: leave the fix to shared_tail_kernel instead of re-reading here
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    LOOP_STAGES: tl.constexpr,  # the tail loop's pipeline depth (Triton pipelines it only when tl.range asks)
):
    s, d, in_d, start, end = _ends_program(index_ptr, inner, BY_LENGTHS, BLOCK_D)
    g = tl.load(grad_ptr + s.to(tl.int64) * inner + d, mask=in_d, other=0).to(tl.float32)
    target = tl.load(output_ptr + s.to(tl.int64) * inner + d, mask=in_d, other=0).to(tl.float32)[None, :]
    held_end = tl.minimum(end, start + RESIDENT_ROWS)
    tail_hits = tl.zeros([BLOCK_N, BLOCK_D], tl.int32)
    for row in tl.range(held_end, end, BLOCK_N, num_stages=LOOP_STAGES):
        offs, mask = _tile(row, end, d, in_d, inner, BLOCK_N)
        hit = _takes_gradient(tl.load(data_ptr + offs, mask=mask, other=0).to(tl.float32), target, mask)
        tail_hits += hit.to(tl.int32)
        if TAIL_PASSES == 1:
            tl.store(grad_in_ptr + offs, tl.where(hit, g[None, :], 0.0).to(grad_in_ptr.dtype.element_ty), mask=mask)
    tail_count = tl.sum(tail_hits, 0)
    held, held_mask = _tile(0, held_end - start, d, in_d, inner, RESIDENT_ROWS)  # int32 offsets from row start
    base = start * inner
    held_hit = _takes_gradient(tl.load(data_ptr + base + held, mask=held_mask, other=0).to(tl.float32), target,
                               held_mask)
    count = tail_count + tl.sum(held_hit.to(tl.int32), 0)
    shared = (count >= 2) & (g > 0)
    g = tl.where(shared, g / tl.maximum(count, 1).to(tl.float32), g)
    tl.store(grad_in_ptr + base + held, tl.where(held_hit, g[None, :], 0.0).to(grad_in_ptr.dtype.element_ty),
             mask=held_mask)
    rewrite = (tail_count > 0) & shared  # the columns whose tail took the undivided gradient
    if MEND_SHARED:  # after the held rows' store: before it, 68 registers, not 61-62 (CPU proxy, sm_90, bf16)
        tl.store(shared_ptr + s * tl.num_programs(1) + tl.program_id(1), tl.sum(rewrite.to(tl.int32), 0))
        tl.store(divided_ptr + s.to(tl.int64) * inner + d,
                 tl.where(rewrite, g, float("nan")).to(divided_ptr.dtype.element_ty), mask=in_d)
    else:
        if TAIL_PASSES == 2:
            rewrite = tail_count >= 0  # every column's tail
        if tl.max(rewrite.to(tl.int32), 0) > 0:
            for row in range(held_end, end, BLOCK_N):
                offs, mask = _tile(row, end, d, in_d, inner, BLOCK_N)
                x = tl.load(data_ptr + offs, mask=mask, other=0).to(tl.float32)
                hit = _takes_gradient(x, target, mask)
                value = tl.where(hit, g[None, :], 0.0).to(grad_in_ptr.dtype.element_ty)
                if TAIL_PASSES == 2:
                    tl.store(grad_in_ptr + offs, value, mask=mask)
                else:
                    tl.store(grad_in_ptr + offs, value, mask=hit & rewrite[None, :])
    if s == 0:
        _zero_rows(grad_in_ptr, 0, start, d, in_d, inner, BLOCK_N, BLOCK_D)
    if s == segments - 1:
        _zero_rows(grad_in_ptr, end, rows, d, in_d, inner, BLOCK_N, BLOCK_D)


@triton.jit
def shared_tail_kernel(
    output_ptr,  # [segments, inner] the forward's output
    data_ptr,  # [rows, inner] the forward's input, contiguous
    index_ptr,  # as one_pass_backward_kernel's
    grad_in_ptr,  # [rows, inner] one_pass_backward_kernel's gradient (MEND_SHARED), mended here
    shared_ptr,  # its flags, one per program (segment s, column block j at s * blocks + j)
    divided_ptr,  # its divided gradients, read where a program's flag is set
    programs,  # one_pass_backward_kernel's: segments * blocks
    blocks,  # its column blocks
    inner,
    BY_LENGTHS: tl.constexpr,
    RESIDENT_ROWS: tl.constexpr,
    PROGRAMS: tl.constexpr,  # one_pass_backward_kernel programs whose flags one program here takes
    FEW: tl.constexpr,  # a program with up to FEW such columns has them read one at a time
    BLOCK_R: tl.constexpr,  # tail rows of one column a step
    BLOCK_N: tl.constexpr,  # tail rows of a whole column block a step
    BLOCK_D: tl.constexpr,
):
    """For PROGRAMS programs of one_pass_backward_kernel at once: in each that flagged it, every column whose
    tail took the undivided gradient of a shared extreme gets the divided one instead. Such columns are usually
    few (0.45% of them, in 1880 of 8192 programs, on the jagged benchmark's bf16 layout): a step takes one of
    them in each program that has up to FEW, and reads BLOCK_R of its tail rows. A program with more (data whose
    extremes tie everywhere, such as all zeros) has its tail read whole, one program at a time, in tiles masked
    to those columns, as one_pass_backward_kernel's own re-read does."""
    q = tl.program_id(0) * PROGRAMS + tl.arange(0, PROGRAMS)
    flagged = tl.load(shared_ptr + q, mask=q < programs, other=0)
    if tl.max(flagged, 0) > 0:
        s = q // blocks
        d = (q % blocks)[:, None] * BLOCK_D + tl.arange(0, BLOCK_D)[None, :]
        start, end = _segment_bounds(index_ptr, s, flagged > 0, BY_LENGTHS)
        offs = s.to(tl.int64)[:, None] * inner + d
        in_d = (flagged > 0)[:, None] & (d < inner)
        divided = tl.load(divided_ptr + offs, mask=in_d, other=float("nan")).to(tl.float32)
        targets = tl.load(output_ptr + offs, mask=in_d, other=0).to(tl.float32)
        held_end = tl.minimum(end, start + RESIDENT_ROWS)
        pending = (divided == divided) & (flagged <= FEW)[:, None]  # fp32: the interpreter compares bf16 bits
        longest = tl.max(end - held_end, 0)
        while tl.max(tl.max(pending.to(tl.int32), 1), 0) > 0:
            c = tl.min(tl.where(pending, d, inner), 1)  # inner where the program has no column left
            picked = d == c[:, None]
            g = tl.sum(tl.where(picked, divided, 0.0), 1).to(grad_in_ptr.dtype.element_ty)
            target = tl.sum(tl.where(picked, targets, 0.0), 1)[:, None]  # -0.0 sums to 0.0: equal all the same
            for row in range(0, longest, BLOCK_R):
                r = held_end[:, None] + row + tl.arange(0, BLOCK_R)[None, :]
                mask = (r < end[:, None]) & (c < inner)[:, None]
                x = tl.load(data_ptr + r * inner + c[:, None], mask=mask, other=0).to(tl.float32)
                tl.store(grad_in_ptr + r * inner + c[:, None], tl.broadcast_to(g[:, None], [PROGRAMS, BLOCK_R]),
                         mask=_takes_gradient(x, target, mask))
            pending = pending & ~picked
        many = flagged > FEW
        each = tl.arange(0, PROGRAMS)
        while tl.max(many.to(tl.int32), 0) > 0:
            f = tl.min(tl.where(many, each, PROGRAMS), 0)
            program = tl.program_id(0) * PROGRAMS + f
            segment = program // blocks
            columns = (program % blocks) * BLOCK_D + tl.arange(0, BLOCK_D)
            f_start, f_end = _segment_bounds(index_ptr, segment, segment >= 0, BY_LENGTHS)
            at = segment.to(tl.int64) * inner + columns
            g = tl.load(divided_ptr + at, mask=columns < inner, other=float("nan")).to(tl.float32)
            target = tl.load(output_ptr + at, mask=columns < inner, other=0).to(tl.float32)[None, :]
            owed = g == g
            g = g.to(grad_in_ptr.dtype.element_ty)[None, :]
            for row in range(tl.minimum(f_end, f_start + RESIDENT_ROWS), f_end, BLOCK_N):
                tile, mask = _tile(row, f_end, columns, owed, inner, BLOCK_N)
                x = tl.load(data_ptr + tile, mask=mask, other=0).to(tl.float32)
                tl.store(grad_in_ptr + tile, tl.broadcast_to(g, [BLOCK_N, BLOCK_D]),
                         mask=_takes_gradient(x, target, mask))
            many = many & (each != f)


def backward(t: dict, call: SegmentCall, genome: dict) -> list[torch.Tensor]:
    """The data gradient of a max or min segment reduction (call.backward), computed by the kernel (and, with
    MEND_SHARED, shared_tail_kernel)."""
    (grad_in,) = allocate(t, call)
    if call.segments == 0:
        return [grad_in.zero_()]  # no segment holds any row
    grid = (call.segments, triton.cdiv(call.inner, genome["BLOCK_D"]))
    grad, output, data = t["grad"].contiguous(), t["output"].contiguous(), t["data"].contiguous()
    ends = segment_ends(t["index"], call)
    shared, divided = grad_in, grad_in  # unread without MEND_SHARED
    if genome["MEND_SHARED"]:
        shared = torch.empty(grid, dtype=torch.int32, device=data.device)
        divided = torch.empty((call.segments, call.inner), dtype=grad_in.dtype, device=data.device)
    launch(one_pass_backward_kernel, grid, grad, output, data, ends, grad_in, shared, divided, call.segments, call.rows,
           call.inner, BY_LENGTHS=call.by_lengths, RESIDENT_ROWS=genome["RESIDENT_ROWS"],
           TAIL_PASSES=genome["TAIL_PASSES"], MEND_SHARED=genome["MEND_SHARED"], BLOCK_N=genome["BLOCK_N"],
           BLOCK_D=genome["BLOCK_D"], LOOP_STAGES=genome["num_stages"], num_warps=genome["num_warps"],
           num_stages=genome["num_stages"])
    if genome["MEND_SHARED"]:
        launch(shared_tail_kernel, (triton.cdiv(shared.numel(), SHARED_TAIL_PROGRAMS),), output, data, ends, grad_in,
               shared, divided, shared.numel(), grid[1], call.inner, BY_LENGTHS=call.by_lengths,
               RESIDENT_ROWS=genome["RESIDENT_ROWS"], PROGRAMS=SHARED_TAIL_PROGRAMS, FEW=SHARED_TAIL_FEW,
               BLOCK_R=SHARED_TAIL_ROWS, BLOCK_N=genome["BLOCK_N"], BLOCK_D=genome["BLOCK_D"], num_warps=4)
    return [grad_in]
