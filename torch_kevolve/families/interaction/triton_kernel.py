"""Triton kernels of the dot interaction. Each sample's [F, D] features are read once (the gather variant
re-reads rows from L1/L2); no [B, F, F] square is written, only one [F, F] scratch slot per program.

forward, gram:    persistent programs, each looping over samples b = pid, pid + programs, ...: the sample's
                  gram matrix X Xᵀ in registers (tl.dot over BLOCK_D slices of D), stored to the program's
                  scratch slot (BLOCK_F * BLOCK_F fp32 in global memory, so in L2), then each block of BLOCK_P
                  pairs loads its entries gram[i, j] from the slot with plain loads. A one-hot matmul picking
                  the entries in registers costs a [BLOCK_P, BLOCK_F] x [BLOCK_F, BLOCK_F] FMA matmul per
                  block, many times the gram itself; the slot costs a BLOCK_F² store (4 KB at DLRM's 27 rows)
                  and a gather from L1/L2. When one block holds every pair (BLOCK_P >= pairs), their entries are
                  computed once per program, not per sample.
forward, gather:  one program per sample; for each block of BLOCK_P pairs, the two rows of every pair are
                  loaded (BLOCK_D columns at a time) and multiplied and summed (no tl.dot: the fp64 path).
backward:         persistent programs as the forward gram's; grad_X[b] = (W + Wᵀ) X[b], where W[k, l] sums
                  grad[b, p] over pairs p = (k, l). W is built in the slot: zeroed, then every block of
                  BLOCK_P pairs atomically adds its gradients at (i, j) (so repeated pairs sum), then W and Wᵀ
                  are loaded from the slot (Wᵀ by swapped offsets, no tl.trans) and multiply X slice by slice.
                  Atomics on one entry (repeated pairs only) add in no fixed order; DLRM's pairs are distinct.
                  One block of every pair has its entries computed once per program, as in the forward.
The slot is shared by the program's threads: tl.debug_barrier() (a CTA barrier, which orders the threads'
global memory accesses) separates its writes from the reads of other threads and those reads from the next
sample's writes. fp32 features take the genome's dot precision ("tf32x3": three tf32 tensor-core products,
close to fp32; "ieee": fp32 FMAs; "tf32_split", the forward gram only: X = H + L with H the tf32 truncation
of X (what the tensor cores read of it) and L the exact remainder, X Xᵀ = H Hᵀ + C + Cᵀ with C = H Lᵀ, so two
products where tf32x3 takes three: the slot holds S = H Hᵀ / 2 + C and pair (i, j) gathers S[i, j] + S[j, i]; the
dropped L Lᵀ is below fp32's rounding, as in tf32x3); half-precision values are exact in tf32, so theirs run in
"tf32".
The gram's right operand is tl.trans of the loaded slice: no second load, and for D-contiguous features (the
usual layout) its memory is the K-major layout tensor-core tf32 operands need. Features and the gradient are read
in place through their strides (no copy). Negative indices count from the end, as in ATen.
"""
from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import InteractionCall

GRAM_MAX_ROWS = 128  # the [F, F] gram (or W) lives in registers
TILE_MIN = 16  # tl.dot's smallest tile side
SPLIT_PRECISION = "tf32_split"  # the forward gram's two-product fp32 precision (the module's docstring)
INTERPRETER_PROGRAMS = 2  # persistent programs on CPU (the interpreter): fewer than most test batches


@triton.jit
def _pair_indices(first_ptr, second_ptr, p, mask, rows):
    """Pair p's rows (first, second), wrapped like ATen's negative indices; 0 where masked."""
    i = tl.load(first_ptr + p, mask=mask, other=0).to(tl.int64)
    j = tl.load(second_ptr + p, mask=mask, other=0).to(tl.int64)
    return tl.where(i < 0, i + rows, i), tl.where(j < 0, j + rows, j)


@triton.jit
def _pair_block(first_ptr, second_ptr, p0, pairs, rows, BLOCK_F: tl.constexpr, BLOCK_P: tl.constexpr):
    """The pairs p0 .. p0 + BLOCK_P: their numbers, mask, and entries (i, j) and (j, i) as offsets i * BLOCK_F + j
    and j * BLOCK_F + i in a slot."""
    p = p0 + tl.arange(0, BLOCK_P)
    mask = p < pairs
    i, j = _pair_indices(first_ptr, second_ptr, p, mask, rows)
    return p, mask, i * BLOCK_F + j, j * BLOCK_F + i


@triton.jit
def _store_dots(slot, out_ptr, sample, pairs, p, mask, entry, mirrored, SPLIT: tl.constexpr):
    """Sample `sample`'s dots of pairs p from the slot's gram (S[i, j] + S[j, i] of a split one) into out."""
    dots = tl.load(slot + entry, mask=mask, other=0.0)
    if SPLIT:
        dots += tl.load(slot + mirrored, mask=mask, other=0.0)
    tl.store(out_ptr + sample * pairs + p, dots.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _rows_slice(x_base, f, d, rows, dim, stride_f, stride_d):
    """The [BLOCK_F, BLOCK_D] slice of one sample's [rows, dim] features (strides stride_f, stride_d), in fp32 (0
    outside)."""
    mask = (f < rows)[:, None] & (d < dim)[None, :]
    return tl.load(x_base + f[:, None] * stride_f + d[None, :] * stride_d, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _gram(x_base, f, rows, dim, stride_f, stride_d, PRECISION: tl.constexpr, SPLIT: tl.constexpr,
          BLOCK_F: tl.constexpr, BLOCK_D: tl.constexpr):
    """X Xᵀ of one sample's [rows, dim] features, [BLOCK_F, BLOCK_F] in fp32 (0 beyond rows); with SPLIT, the
    S = H Hᵀ / 2 + H Lᵀ whose S + Sᵀ is X Xᵀ (the module's docstring)."""
    gram = tl.zeros([BLOCK_F, BLOCK_F], dtype=tl.float32)
    cross = tl.zeros([BLOCK_F, BLOCK_F], dtype=tl.float32)
    for d0 in range(0, dim, BLOCK_D):
        x = _rows_slice(x_base, f, d0 + tl.arange(0, BLOCK_D), rows, dim, stride_f, stride_d)
        if SPLIT:
            high = (x.to(tl.uint32, bitcast=True) & 0xFFFFE000).to(tl.float32, bitcast=True)
            gram = tl.dot(high, tl.trans(high), gram, input_precision="tf32")
            cross = tl.dot(high, tl.trans(x - high), cross, input_precision="tf32")
        else:
            gram = tl.dot(x, tl.trans(x), gram, input_precision=PRECISION)
    if SPLIT:
        gram = gram * 0.5 + cross
    return gram


@triton.jit
def pairwise_dots_gram_kernel(
    x_ptr,  # [batch, rows, dim] features, any strides
    first_ptr,  # [pairs] row of each pair's left factor
    second_ptr,  # [pairs] row of each pair's right factor
    out_ptr,  # [batch, pairs] contiguous
    scratch_ptr,  # [programs, BLOCK_F * BLOCK_F] fp32: one slot per program
    batch,
    rows,
    dim,
    pairs,
    x_stride_b,
    x_stride_f,
    x_stride_d,
    PRECISION: tl.constexpr,  # "tf32x3" or "ieee" for fp32 features, "tf32" for half (exact) and with SPLIT
    SPLIT: tl.constexpr,  # the "tf32_split" gram of fp32 features
    ONE_BLOCK: tl.constexpr,  # BLOCK_P >= pairs: the entries are computed once
    BLOCK_F: tl.constexpr,  # rows padded to a power of two >= 16
    BLOCK_P: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    f = tl.arange(0, BLOCK_F)
    slot = scratch_ptr + pid * BLOCK_F * BLOCK_F
    all_p, all_mask, all_entry, all_mirrored = _pair_block(first_ptr, second_ptr, 0, pairs, rows, BLOCK_F, BLOCK_P)
    for b in range(pid, batch, tl.num_programs(0)):
        sample = tl.cast(b, tl.int64)
        gram = _gram(x_ptr + sample * x_stride_b, f, rows, dim, x_stride_f, x_stride_d, PRECISION, SPLIT, BLOCK_F,
                     BLOCK_D)
        tl.store(slot + f[:, None] * BLOCK_F + f[None, :], gram)
        tl.debug_barrier()  # the whole gram is in the slot before any thread gathers from it
        if ONE_BLOCK:
            _store_dots(slot, out_ptr, sample, pairs, all_p, all_mask, all_entry, all_mirrored, SPLIT)
        else:
            for p0 in range(0, pairs, BLOCK_P):
                p, mask, entry, mirrored = _pair_block(first_ptr, second_ptr, p0, pairs, rows, BLOCK_F, BLOCK_P)
                _store_dots(slot, out_ptr, sample, pairs, p, mask, entry, mirrored, SPLIT)
        tl.debug_barrier()  # every thread has gathered before the next sample's gram overwrites the slot


@triton.jit
def pairwise_dots_gather_kernel(
    x_ptr,  # [batch, rows, dim] features, any strides
    first_ptr,
    second_ptr,
    out_ptr,  # [batch, pairs] contiguous
    rows,
    dim,
    pairs,
    x_stride_b,
    x_stride_f,
    x_stride_d,
    WIDE: tl.constexpr,  # accumulate in fp64 (fp64 features)
    BLOCK_P: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    x_base = x_ptr + b * x_stride_b
    acc_type = tl.float64 if WIDE else tl.float32
    for p0 in range(0, pairs, BLOCK_P):
        p = p0 + tl.arange(0, BLOCK_P)
        mask = p < pairs
        i, j = _pair_indices(first_ptr, second_ptr, p, mask, rows)
        dots = tl.zeros([BLOCK_P], dtype=acc_type)
        for d0 in range(0, dim, BLOCK_D):
            d = d0 + tl.arange(0, BLOCK_D)
            m = mask[:, None] & (d < dim)[None, :]
            xi = tl.load(x_base + i[:, None] * x_stride_f + d[None, :] * x_stride_d, mask=m, other=0.0).to(acc_type)
            xj = tl.load(x_base + j[:, None] * x_stride_f + d[None, :] * x_stride_d, mask=m, other=0.0).to(acc_type)
            dots += tl.sum(xi * xj, axis=1)
        tl.store(out_ptr + b * pairs + p, dots.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _add_pair_gradients(grad_ptr, slot, sample, grad_stride_b, grad_stride_p, p, mask, entry):
    """Add sample `sample`'s gradients of pairs p at their entries of the slot."""
    g = tl.load(grad_ptr + sample * grad_stride_b + p * grad_stride_p, mask=mask, other=0.0).to(tl.float32)
    tl.atomic_add(slot + entry, g, mask=mask, sem="relaxed")  # ordered by the callers' barriers


@triton.jit
def _pair_weights(grad_ptr, first_ptr, second_ptr, slot, sample, rows, pairs, grad_stride_b, grad_stride_p,
                  all_p, all_mask, all_entry, ONE_BLOCK: tl.constexpr, BLOCK_F: tl.constexpr, BLOCK_P: tl.constexpr):
    """W + Wᵀ of one sample, [BLOCK_F, BLOCK_F] in fp32, built in the program's slot (left ready for reuse);
    all_p, all_mask, all_entry: the first block of pairs, every pair when ONE_BLOCK."""
    f = tl.arange(0, BLOCK_F)
    tl.store(slot + f[:, None] * BLOCK_F + f[None, :], tl.zeros([BLOCK_F, BLOCK_F], dtype=tl.float32))
    tl.debug_barrier()  # the slot is zero before any thread adds into it
    if ONE_BLOCK:
        _add_pair_gradients(grad_ptr, slot, sample, grad_stride_b, grad_stride_p, all_p, all_mask, all_entry)
    else:
        for p0 in range(0, pairs, BLOCK_P):
            p, mask, entry, _ = _pair_block(first_ptr, second_ptr, p0, pairs, rows, BLOCK_F, BLOCK_P)
            _add_pair_gradients(grad_ptr, slot, sample, grad_stride_b, grad_stride_p, p, mask, entry)
    tl.debug_barrier()  # every pair is added before W is read
    weights = tl.load(slot + f[:, None] * BLOCK_F + f[None, :]) + tl.load(slot + f[None, :] * BLOCK_F + f[:, None])
    tl.debug_barrier()  # every thread has read W before the next sample zeroes the slot
    return weights


@triton.jit
def pairwise_dots_backward_kernel(
    grad_ptr,  # [batch, pairs] gradient of the dots, any strides
    x_ptr,  # [batch, rows, dim] features, any strides
    first_ptr,
    second_ptr,
    out_ptr,  # [batch, rows, dim] contiguous gradient of the features
    scratch_ptr,  # [programs, BLOCK_F * BLOCK_F] fp32: one slot per program
    batch,
    rows,
    dim,
    pairs,
    grad_stride_b,
    grad_stride_p,
    x_stride_b,
    x_stride_f,
    x_stride_d,
    PRECISION: tl.constexpr,
    ONE_BLOCK: tl.constexpr,
    BLOCK_F: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    f = tl.arange(0, BLOCK_F)
    slot = scratch_ptr + pid * BLOCK_F * BLOCK_F
    all_p, all_mask, all_entry, _ = _pair_block(first_ptr, second_ptr, 0, pairs, rows, BLOCK_F, BLOCK_P)
    for b in range(pid, batch, tl.num_programs(0)):
        sample = tl.cast(b, tl.int64)
        weights = _pair_weights(grad_ptr, first_ptr, second_ptr, slot, sample, rows, pairs, grad_stride_b,
                                grad_stride_p, all_p, all_mask, all_entry, ONE_BLOCK, BLOCK_F, BLOCK_P)
        x_base = x_ptr + sample * x_stride_b
        out_base = out_ptr + sample * rows * dim
        for d0 in range(0, dim, BLOCK_D):
            d = d0 + tl.arange(0, BLOCK_D)
            out = tl.dot(weights, _rows_slice(x_base, f, d, rows, dim, x_stride_f, x_stride_d),
                         input_precision=PRECISION)
            mask = (f < rows)[:, None] & (d < dim)[None, :]
            tl.store(out_base + f[:, None] * dim + d[None, :], out.to(out_ptr.dtype.element_ty), mask=mask)


def padded_rows(rows: int) -> int:
    return max(TILE_MIN, triton.next_power_of_2(rows))


@functools.cache
def _multiprocessors(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def programs(call: InteractionCall, genome: dict, device: torch.device) -> int:
    """The persistent programs of the gram and backward kernels: PROGRAMS_PER_SM per SM on GPUs,
    INTERPRETER_PROGRAMS on CPU, never more than samples."""
    per_device = INTERPRETER_PROGRAMS if device.type == "cpu" else _multiprocessors(device) * genome["PROGRAMS_PER_SM"]
    return min(call.batch, per_device)


def allocate(t: dict, call: InteractionCall) -> list[torch.Tensor]:
    shape = (call.batch, call.rows, call.dim) if call.backward else (call.batch, call.pairs)
    return [torch.empty(shape, dtype=call.dtype, device=t["features"].device)]


def _launch_persistent(kernel, call: InteractionCall, genome: dict, tensors: tuple, strides: tuple,
                       options: dict) -> None:
    """Launch the gram or backward kernel on `tensors` (and their `strides`) with a fresh scratch slot per
    persistent program."""
    device, block_f = tensors[0].device, padded_rows(call.rows)
    grid = programs(call, genome, device)
    scratch = torch.empty((grid, block_f * block_f), dtype=torch.float32, device=device)
    precision = genome["fp32_precision"] if call.dtype == torch.float32 else "tf32"
    launch(kernel, (grid,), *tensors, scratch, call.batch, call.rows, call.dim, call.pairs, *strides,
           PRECISION="tf32" if precision == SPLIT_PRECISION else precision, ONE_BLOCK=genome["BLOCK_P"] >= call.pairs,
           BLOCK_F=block_f, **options)


def interaction(t: dict, call: InteractionCall, genome: dict) -> list[torch.Tensor]:
    """The call's output, computed by the kernels, which read the features and the gradient in place, whatever
    their strides."""
    (out,) = allocate(t, call)
    x, first, second = t["features"], t["first"].contiguous(), t["second"].contiguous()
    options = dict(BLOCK_P=genome["BLOCK_P"], BLOCK_D=genome["BLOCK_D"], num_warps=genome["num_warps"],
                   num_stages=genome["num_stages"])
    if call.backward:
        grad = t["grad"]
        _launch_persistent(pairwise_dots_backward_kernel, call, genome, (grad, x, first, second, out),
                           grad.stride() + x.stride(), options)
    elif genome["algorithm"] == "gram":
        split = call.dtype == torch.float32 and genome["fp32_precision"] == SPLIT_PRECISION
        _launch_persistent(pairwise_dots_gram_kernel, call, genome, (x, first, second, out), x.stride(),
                           dict(options, SPLIT=split))
    else:
        launch(pairwise_dots_gather_kernel, (call.batch,), x, first, second, out, call.rows, call.dim, call.pairs,
               *x.stride(), WIDE=call.dtype == torch.float64, **options)
    return [out]
