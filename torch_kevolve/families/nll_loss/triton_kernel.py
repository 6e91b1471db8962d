"""Triton nll_loss forward and backward.

forward:  reduction none: each program writes the losses of BLOCK rows; mean/sum: one program walks
          every row in BLOCK steps and writes the reduced loss and the total weight.
backward: each program writes BLOCK rows of the gradient, BLOCK_C classes at a time: zero except
          at each row's target class. Arithmetic in fp32 (fp64 for fp64 inputs).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_launch import launch
from .calls import NONE, NllLossCall

GENOME_CONSTEXPRS = ("BLOCK", "BLOCK_C")


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
    out_ptr,  # [rows] losses (reduction none) or [] the reduced loss
    total_weight_ptr,  # [] sum of the weights of non-ignored rows (mean/sum)
    rows,
    stride_row,  # between batch elements
    stride_class,
    inner,
    ignore_index,
    REDUCTION: tl.constexpr,  # 0 none, 1 mean, 2 sum
    HAS_WEIGHT: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    if REDUCTION == 0:
        row = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        loss, _ = _row_losses(x_ptr, target_ptr, w_ptr, row, rows, stride_row, stride_class, inner, ignore_index,
                              HAS_WEIGHT, FP64)
        tl.store(out_ptr + row, loss.to(out_ptr.dtype.element_ty), mask=row < rows)
    else:
        acc_type = tl.float64 if FP64 else tl.float32
        loss_sum = tl.zeros([BLOCK], dtype=acc_type)
        weight_sum = tl.zeros([BLOCK], dtype=acc_type)
        for start in range(0, rows, BLOCK):
            loss, w = _row_losses(x_ptr, target_ptr, w_ptr, start + tl.arange(0, BLOCK), rows, stride_row,
                                  stride_class, inner, ignore_index, HAS_WEIGHT, FP64)
            loss_sum += loss
            weight_sum += w
        total = tl.sum(weight_sum, axis=0)
        result = tl.sum(loss_sum, axis=0)
        if REDUCTION == 1:
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
    row = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
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
    for start in range(0, classes, BLOCK_C):
        col = start + tl.arange(0, BLOCK_C)
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


def nll_loss(t: dict, call: NllLossCall, genome: dict) -> list[torch.Tensor]:
    """The call's outputs (see `allocate`), computed by the kernels; reduction none leaves
    total_weight at 0."""
    outs = allocate(t, call)
    x, target = t["self"], t["target"].contiguous()
    options = dict(REDUCTION=call.reduction, HAS_WEIGHT=call.has_weight, FP64=x.dtype == torch.float64,
                   BLOCK=genome["BLOCK"], num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    weight = None if t["weight"] is None else t["weight"].contiguous()
    rows_grid = (triton.cdiv(call.rows, genome["BLOCK"]),)
    if call.backward:
        launch(nll_loss_backward_kernel, rows_grid, t["grad_output"].contiguous(), target, weight,
               t["total_weight"], outs[0], call.rows, call.classes, call.inner, call.ignore_index,
               BLOCK_C=genome["BLOCK_C"], **options)
        return outs
    if call.reduction == NONE:
        outs[1].zero_()
    if x.dim() == 4:
        x = x.contiguous()
    stride_row, stride_class = (x.stride(0), x.stride(1)) if x.dim() > 1 else (0, x.stride(0))
    launch(nll_loss_forward_kernel, rows_grid if call.reduction == NONE else (1,), x, target, weight, *outs,
           call.rows, stride_row, stride_class, call.inner, call.ignore_index, **options)
    return outs
