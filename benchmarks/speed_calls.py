"""Benchmark-sized calls of the row, loss, scan, gather and GEMM overloads, for the per-overload speed table.

OpInfo samples are tiny (a few elements per dim), and most of these overloads have no example problem of
their own, so the speed table times one call per overload from here: [4096, 1024] float32 rows reduced,
normalized or scanned along the last dim, or multiplied by a [1024, 1024] nn.Linear weight (passed transposed, as
nn.Linear does), a 1000-class loss on 4096 rows, a [64, 128, 32, 32] batch (ATen's
native_batch_norm in inference: in training it updates running stats in place, which the family refuses), and
gathers of 81920 rows of 128 from a 100k-row table. The calls are built on the CPU; the family turns each
into its Problem, whose inputs are then drawn on the GPU.
"""
from __future__ import annotations

import functools

import torch

aten = torch.ops.aten
ROWS, LENGTH = 4096, 1024
CLASSES = 1000
BATCH = (64, 128, 32, 32)
TABLE_ROWS, LOOKUPS, DIM = 100_000, 81_920, 128


@functools.cache
def benchmark_calls() -> dict:
    """{overload: positional arguments of one benchmark-sized call}."""
    x = torch.randn(ROWS, LENGTH)
    positive, dims = x > 0, [1]
    w, b = torch.randn(LENGTH), torch.randn(LENGTH)
    soft, log_soft = aten._softmax(x, 1, False), aten._log_softmax(x, 1, False)
    _, mean, rstd = aten.native_layer_norm(x, [LENGTH], w, b, 1e-5)
    _, rms_rstd = aten._fused_rms_norm(x, [LENGTH], w, 1e-5)

    logits = torch.randn(ROWS, CLASSES).log_softmax(1)
    target = torch.randint(0, CLASSES, (ROWS,))
    _, total = aten.nll_loss_forward(logits, target, None, 1, -100)
    image = torch.randn(8, CLASSES // 10, 64, 64).log_softmax(1)
    image_target = torch.randint(0, CLASSES // 10, (8, 64, 64))
    _, image_total = aten.nll_loss2d_forward(image, image_target, None, 1, -100)

    batch = torch.randn(BATCH)
    channels = BATCH[1]
    cw, cb = torch.randn(channels), torch.randn(channels)
    running_mean, running_var = torch.zeros(channels), torch.ones(channels)
    _, save_mean, save_invstd = aten.native_batch_norm(batch, cw, cb, running_mean.clone(), running_var.clone(), True,
                                                       0.1, 1e-5)
    groups, inner = 32, BATCH[2] * BATCH[3]
    grouped = batch.reshape(BATCH[0], channels, inner)
    _, group_mean, group_rstd = aten.native_group_norm(grouped, cw, cb, BATCH[0], channels, inner, groups, 1e-5)

    table, index = torch.randn(TABLE_ROWS, DIM), torch.randint(0, TABLE_ROWS, (LOOKUPS,))
    activations, weight = torch.randn(ROWS, LENGTH), torch.randn(LENGTH, LENGTH)
    return {
        aten.sum.default: (x,), aten.sum.dim_IntList: (x, dims), aten.nansum.default: (x,),
        aten.count_nonzero.default: (x,), aten.count_nonzero.dim_IntList: (x, dims),
        aten.mean.default: (x,), aten.mean.dim: (x, dims), aten.prod.default: (x,), aten.prod.dim_int: (x, 1),
        aten.amax.default: (x, dims), aten.amin.default: (x, dims), aten.argmax.default: (x, 1),
        aten.argmin.default: (x, 1), aten.var.correction: (x, dims), aten.std.correction: (x, dims),
        aten.var_mean.correction: (x, dims), aten.std_mean.correction: (x, dims),
        aten.linalg_vector_norm.default: (x, 2, dims), aten.logsumexp.default: (x, dims),
        aten.max.dim: (x, 1), aten.min.dim: (x, 1), aten.max.default: (x,), aten.min.default: (x,),
        aten.any.default: (positive,), aten.any.dim: (positive, 1), aten.any.dims: (positive, dims),
        aten.all.default: (positive,), aten.all.dim: (positive, 1), aten.all.dims: (positive, dims),
        aten._softmax.default: (x, 1, False), aten._log_softmax.default: (x, 1, False),
        aten._safe_softmax.default: (x, 1),
        aten._softmax_backward_data.default: (x, soft, 1, torch.float32),
        aten._log_softmax_backward_data.default: (x, log_soft, 1, torch.float32),
        aten.native_layer_norm.default: (x, [LENGTH], w, b, 1e-5),
        aten.native_layer_norm_backward.default: (x, x, [LENGTH], mean, rstd, w, b, [True, True, True]),
        aten._fused_rms_norm.default: (x, [LENGTH], w, 1e-5),
        aten._fused_rms_norm_backward.default: (x, x, [LENGTH], rms_rstd, w, [True, True]),
        aten.nll_loss_forward.default: (logits, target, None, 1, -100),
        aten.nll_loss_backward.default: (torch.tensor(1.0), logits, target, None, 1, -100, total),
        aten.nll_loss2d_forward.default: (image, image_target, None, 1, -100),
        aten.nll_loss2d_backward.default: (torch.tensor(1.0), image, image_target, None, 1, -100, image_total),
        aten.native_batch_norm.default: (batch, cw, cb, running_mean, running_var, False, 0.1, 1e-5),
        aten.native_batch_norm_backward.default: (batch, batch, cw, running_mean, running_var, save_mean,
                                                  save_invstd, True, 1e-5, [True, True, True]),
        aten._native_batch_norm_legit_no_training.default: (batch, cw, cb, running_mean, running_var, 0.1, 1e-5),
        aten._native_batch_norm_legit_functional.default: (batch, cw, cb, running_mean, running_var, True, 0.1,
                                                           1e-5),
        aten.native_group_norm.default: (grouped, cw, cb, BATCH[0], channels, inner, groups, 1e-5),
        aten.native_group_norm_backward.default: (grouped, grouped, group_mean, group_rstd, cw, BATCH[0], channels,
                                                  inner, groups, [True, True, True]),
        aten.cumsum.default: (x, 1), aten.cumprod.default: (x, 1),
        aten.index_select.default: (table, 0, index), aten.embedding.default: (table, index),
        aten.embedding_dense_backward.default: (torch.randn(LOOKUPS, DIM), index, TABLE_ROWS, -1, False),
        aten.mm.default: (activations, weight.t()),
        aten.addmm.default: (torch.randn(LENGTH), activations, weight.t()),
    }
