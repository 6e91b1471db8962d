"""Triton nll_loss forward and backward.

forward:  reduction none: each program writes the losses of BLOCK rows. mean/sum: two passes, no
          atomics (deterministic): each of at most ROW_SPLIT programs sums (-weight * x[target], weight)
          over its run of whole BLOCKs of rows into a partial buffer; one program then sums the partials
          and writes the loss (divided by the total weight for mean) and the total weight.
backward: each program writes one [BLOCK rows, BLOCK_C classes] tile of the gradient: zero except at
          each row's target class. Arithmetic in fp32 (fp64 for fp64 inputs).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..row_tiles import whole_tile_chunks
from ..triton_launch import launch
from .calls import MEAN, NONE, NllLossCall


@triton.jit
def _row_losses(x_ptr, target_ptr, w_ptr, row, rows, stride_row, stride_class, inner, ignore_index,
                HAS_WEIGHT: tl.constexpr, FP64: tl.constexpr):
    """(-weight * x[row, target], weight) of each row; 0 for ignored rows and rows past the end.
    Row r reads x at (r // inner) * stride_row + r % inner + target * stride_class."""
    acc_type = tl.float64 if FP64 else tl.float32
    mask = row < rows
    t = tl.load(target_ptr + row, mask=mask, other=0).to(tl.int64)
    keep = mask & (t != ignore_index)
    if HAS_WEIGHT:
        w = tl.load(w_ptr + t, mask=keep, other=0.0).to(acc_type)
    else:
        w = tl.where(keep, 1.0, 0.0).to(acc_type)
    row = row.to(tl.int64)
    v = tl.load(x_ptr + (row // inner) * stride_row + row % inner + t * stride_class, mask=keep, other=0.0)
    v = v.to(acc_type)
    return tl.where(keep, -w * v, 0.0), w


@triton.jit
def nll_loss_forward_kernel(
    x_ptr,  # [batch, classes] log-probabilities, any strides; nll_loss2d: [batch, classes, inner] contiguous
    target_ptr,  # [rows] class of each row (rows = batch * inner)
    w_ptr,  # [classes] class weights (read when HAS_WEIGHT)
    out_ptr,  # [rows] the loss of each row (reduction none)
    rows,
    stride_row,  # between batch elements
    stride_class,
    inner,
    ignore_index,
    HAS_WEIGHT: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    loss, _ = _row_losses(x_ptr, target_ptr, w_ptr, row, rows, stride_row, stride_class, inner, ignore_index,
                          HAS_WEIGHT, FP64)
    tl.store(out_ptr + row, loss.to(out_ptr.dtype.element_ty), mask=row < rows)


@triton.jit
def nll_loss_partials_kernel(
    x_ptr, target_ptr, w_ptr,  # as in nll_loss_forward_kernel
    partial_ptr,  # [2, programs] fp32 (fp64 for FP64): row 0 the loss sums, row 1 the weight sums
    rows,
    rows_per_program,  # a multiple of BLOCK
    programs,
    stride_row,
    stride_class,
    inner,
    ignore_index,
    HAS_WEIGHT: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    acc_type = tl.float64 if FP64 else tl.float32
    pid = tl.program_id(0)
    first = pid.to(tl.int64) * rows_per_program
    loss_sum = tl.zeros([BLOCK], dtype=acc_type)
    weight_sum = tl.zeros([BLOCK], dtype=acc_type)
    for start in range(0, rows_per_program, BLOCK):
        loss, w = _row_losses(x_ptr, target_ptr, w_ptr, first + start + tl.arange(0, BLOCK), rows, stride_row,
                              stride_class, inner, ignore_index, HAS_WEIGHT, FP64)
        loss_sum += loss
        weight_sum += w
    tl.store(partial_ptr + pid, tl.sum(loss_sum, axis=0))
    tl.store(partial_ptr + programs + pid, tl.sum(weight_sum, axis=0))


@triton.jit
def nll_loss_combine_kernel(
    partial_ptr,  # [2, programs] from nll_loss_partials_kernel
    out_ptr,  # [] the reduced loss
    total_weight_ptr,  # [] sum of the weights of non-ignored rows
    programs,  # at most PARTIALS
    MEAN: tl.constexpr,
    PARTIALS: tl.constexpr,
):
    i = tl.arange(0, PARTIALS)
    mask = i < programs
    result = tl.sum(tl.load(partial_ptr + i, mask=mask, other=0.0), axis=0)
    total = tl.sum(tl.load(partial_ptr + programs + i, mask=mask, other=0.0), axis=0)
    if MEAN:
        result = result / total
    tl.store(out_ptr, result.to(out_ptr.dtype.element_ty))
    tl.store(total_weight_ptr, total.to(total_weight_ptr.dtype.element_ty))


@triton.jit
def nll_loss_backward_kernel(
    grad_ptr,  # [rows] (reduction none) or [] gradient of the loss
    target_ptr,  # [rows]
    w_ptr,  # [classes] (read when HAS_WEIGHT)
    total_weight_ptr,  # [] (read for mean)
    grad_input_ptr,  # [batch, classes, inner] contiguous (rows = batch * inner)
    rows,
    classes,
    inner,
    ignore_index,
    REDUCTION: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    acc_type = tl.float64 if FP64 else tl.float32
    class_blocks = tl.cdiv(classes, BLOCK_C)
    pid = tl.program_id(0)
    row = (pid // class_blocks) * BLOCK + tl.arange(0, BLOCK)
    col = (pid % class_blocks) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = row < rows
    t = tl.load(target_ptr + row, mask=mask, other=0).to(tl.int64)
    keep = mask & (t != ignore_index)
    first = (row // inner).to(tl.int64) * classes * inner + row % inner  # element (row, class 0)
    if REDUCTION == 0:
        g = tl.load(grad_ptr + row, mask=mask, other=0.0).to(acc_type)
    else:
        g = tl.load(grad_ptr + tl.zeros_like(row)).to(acc_type)
        if REDUCTION == 1:
            g = g / tl.load(total_weight_ptr).to(acc_type)
    if HAS_WEIGHT:
        g = g * tl.load(w_ptr + t, mask=keep, other=0.0).to(acc_type)
    d = tl.where(keep, -g, 0.0)
    value = tl.where(col[None, :] == t[:, None], d[:, None], 0.0)
    tl.store(grad_input_ptr + first[:, None] + col.to(tl.int64)[None, :] * inner,
             value.to(grad_input_ptr.dtype.element_ty), mask=mask[:, None] & (col < classes)[None, :])


def allocate(t: dict, call: NllLossCall) -> list[torch.Tensor]:
    """Empty outputs: forward (output, total_weight), backward grad_input (contiguous, like self)."""
    x = t["self"]
    if call.backward:
        return [torch.empty(x.shape, dtype=x.dtype, device=x.device)]
    out_shape = call.loss_shape if call.reduction == NONE else ()
    return [torch.empty(out_shape, dtype=x.dtype, device=x.device), torch.empty((), dtype=x.dtype, device=x.device)]


def row_split(rows: int, block: int, split: int) -> tuple[int, int]:
    """(rows per program, programs) of a sum/mean: the BLOCKs of rows (at least one) dealt in equal runs to
    at most `split` programs; the last run may be shorter."""
    return whole_tile_chunks(max(rows, 1), block, split)


def _backward(t: dict, call: NllLossCall, genome: dict, grad_input: torch.Tensor, **options) -> None:
    """Fill grad_input, one program per [BLOCK, BLOCK_C] tile."""
    tiles = triton.cdiv(call.rows, genome["BLOCK"]) * triton.cdiv(call.classes, genome["BLOCK_C"])
    weight = None if t["weight"] is None else t["weight"].contiguous()
    launch(nll_loss_backward_kernel, (tiles,), t["grad_output"].contiguous(), t["target"].contiguous(), weight,
           t["total_weight"], grad_input, call.rows, call.classes, call.inner, call.ignore_index,
           REDUCTION=call.reduction, BLOCK_C=genome["BLOCK_C"], **options)


def _forward(t: dict, call: NllLossCall, genome: dict, output: torch.Tensor, total_weight: torch.Tensor,
             **options) -> None:
    """Fill output (and total_weight for mean/sum; 0 for none): one pass for none, partials then combine else."""
    x, target = t["self"], t["target"].contiguous()
    weight = None if t["weight"] is None else t["weight"].contiguous()
    if x.dim() == 4:
        x = x.contiguous()
    strides = (x.stride(0), x.stride(1)) if x.dim() > 1 else (0, x.stride(0))
    if call.reduction == NONE:
        total_weight.zero_()
        launch(nll_loss_forward_kernel, (triton.cdiv(call.rows, genome["BLOCK"]),), x, target, weight, output,
               call.rows, *strides, call.inner, call.ignore_index, **options)
        return
    rows_per_program, programs = row_split(call.rows, genome["BLOCK"], genome["ROW_SPLIT"])
    partials = torch.empty(2, programs, dtype=torch.float64 if options["FP64"] else torch.float32, device=x.device)
    launch(nll_loss_partials_kernel, (programs,), x, target, weight, partials, call.rows, rows_per_program,
           programs, *strides, call.inner, call.ignore_index, **options)
    launch(nll_loss_combine_kernel, (1,), partials, output, total_weight, programs, MEAN=call.reduction == MEAN,
           PARTIALS=genome["ROW_SPLIT"], num_warps=options["num_warps"], num_stages=options["num_stages"])


def nll_loss(t: dict, call: NllLossCall, genome: dict) -> list[torch.Tensor]:
    """The call's outputs (see `allocate`), computed by the kernels; reduction none leaves
    total_weight at 0."""
    outs = allocate(t, call)
    options = dict(HAS_WEIGHT=call.has_weight, FP64=t["self"].dtype == torch.float64, BLOCK=genome["BLOCK"],
                   num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    if call.backward:
        _backward(t, call, genome, *outs, **options)
    else:
        _forward(t, call, genome, *outs, **options)
    return outs
