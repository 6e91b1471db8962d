"""Every Triton kernel of the reduction (whole and split rows), softmax, scan, layer-norm, group-norm, nll_loss,
batch-norm, gather, jagged, segment_reduce (its three gradients too) and bucketize families compiles for Hopper
(sm_90) without a GPU, with the arguments and constexprs their launchers pass (captured, as in test_sm90_compile)."""
import math

import pytest
import torch

from tests.families.test_sm90_compile import captured_launches, compile_for_sm90
from torch_kevolve.families import (BATCH_NORM, BUCKETIZE, GATHER, GROUP_NORM, JAGGED, LAYER_NORM, NLL_LOSS, REDUCTION,
                                   SCAN, SEGMENT_REDUCE, SOFTMAX)
from torch_kevolve.families.bucketize import triton_kernel as bucketize_kernel
from torch_kevolve.families.index_select import triton_kernel as gather_kernel
from torch_kevolve.families.jagged import triton_kernel as jagged_kernel
from torch_kevolve.families.segment_reduce import ends_forward, lengths_ends, one_pass_backward, rows_backward
from torch_kevolve.families.segment_reduce import triton_kernel as segment_reduce_kernel
from torch_kevolve.families.group_norm import triton_kernel as group_norm_kernel
from torch_kevolve.families.batch_norm import triton_kernel as batch_norm_kernel
from torch_kevolve.families.layer_norm import triton_kernel as layer_norm_kernel
from torch_kevolve.families.nll_loss import triton_kernel as nll_loss_kernel
from torch_kevolve.families.reduction import triton_kernel as reduction_kernel
from torch_kevolve.families.scan import triton_kernel as scan_kernel
from torch_kevolve.families.softmax import triton_kernel as softmax_kernel

aten = torch.ops.aten
X = torch.zeros(8, 64)
GENOME = dict(BLOCK_M=4, BLOCK_N=64, num_warps=4, num_stages=2)
REDUCTIONS = [  # one call per RowProgram step, over the dtypes that change the accumulator
    (aten.sum.dim_IntList, (X.half(), [1])),
    (aten.sum.default, (X.to(torch.int32),)),
    (aten.prod.dim_int, (X.double(), 1)),
    (aten.amax.default, (X.bfloat16(), [1])),
    (aten.amin.default, (X.to(torch.int8), [1])),
    (aten.argmax.default, (X, 1)),
    (aten.argmin.default, (X.to(torch.uint8), 1)),
    (aten.max.dim, (X.half(), 1)),
    (aten.min.dim, (X.to(torch.int32), 1)),
    (aten.var_mean.correction, (X, [1])),
    (aten.std.correction, (X.double(), [1])),
    (aten.linalg_vector_norm.default, (X, 3.5, [1])),
    (aten.linalg_vector_norm.default, (X.double(), -math.inf, [1])),
    (aten.logsumexp.default, (X.half(), [1])),
    (aten.any.dim, (X.bool(), 1)),
    (aten.all.dims, (X.to(torch.uint8), [1])),
]
LONG = torch.zeros(2, 4096)
SPLIT_REDUCTIONS = [  # rows split over programs: a partial pass and a combining pass, one per combine and accumulator
    (aten.sum.default, (LONG.to(torch.int32),)),
    (aten.mean.dim, (LONG.bfloat16(), [1])),
    (aten.prod.dim_int, (LONG.double(), 1)),
    (aten.amin.default, (LONG.half(), [1])),
    (aten.argmax.default, (LONG, 1)),
    (aten.min.dim, (LONG.to(torch.int8), 1)),
    (aten.count_nonzero.default, (LONG, 1)),
    (aten.any.default, (LONG.bool(),)),
    (aten.linalg_vector_norm.default, (LONG, 3.5, [1])),
]
SOFTMAXES = [
    (aten._softmax.default, (X.t(), 0, False)),
    (aten._log_softmax.default, (X.bfloat16(), 1, False)),
    (aten._softmax.default, (X.half(), 1, True)),
    (aten._softmax_backward_data.default, (X, X, 0, torch.float16)),
    (aten._log_softmax_backward_data.default, (X.double(), X.double(), 1, torch.float64)),
    (aten._safe_softmax.default, (X.bfloat16(), 1, torch.float32)),
]


@pytest.fixture
def captured(monkeypatch):
    return captured_launches(monkeypatch, reduction_kernel, softmax_kernel, layer_norm_kernel, nll_loss_kernel,
                             batch_norm_kernel, group_norm_kernel, scan_kernel, gather_kernel, jagged_kernel,
                             segment_reduce_kernel, ends_forward, lengths_ends, one_pass_backward, rows_backward,
                             bucketize_kernel)


def compiles(calls, launches=1) -> list:
    """The captured launches (`launches` of them), each compiled for sm_90."""
    assert len(calls) == launches
    compiled = [compile_for_sm90(*call) for call in calls]
    assert all(c.asm["cubin"] and ".target sm_90" in c.asm["ptx"] for c in compiled)
    return compiled


@pytest.mark.parametrize("overload,args", REDUCTIONS, ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_reduction_kernel_compiles_for_sm90(captured, overload, args):
    problem = REDUCTION.problem(overload, args, {})
    REDUCTION.implementation("reduction_triton").build(problem, dict(GENOME, SPLIT=1))(*args)
    assert compiles(captured)


@pytest.mark.parametrize("overload,args", SPLIT_REDUCTIONS,
                         ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_split_reduction_kernels_compile_for_sm90(captured, overload, args):
    problem = REDUCTION.problem(overload, args, {})
    REDUCTION.implementation("reduction_triton").build(problem, dict(GENOME, SPLIT=16))(*args)
    assert compiles(captured, launches=2)


@pytest.mark.parametrize("overload,args", SOFTMAXES, ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_softmax_kernels_compile_for_sm90(captured, overload, args):
    problem = SOFTMAX.problem(overload, args, {})
    SOFTMAX.implementation("softmax_triton").build(problem, GENOME)(*args)
    assert compiles(captured)


W = torch.zeros(64)
LAYER_NORMS = [  # (overload, args, kernel launches): weight/bias gradients take two (row-chunk partials, their sums)
    (aten.native_layer_norm.default, (X, [64], W, W, 1e-5), 1),
    (aten.native_layer_norm.default, (X.bfloat16(), [64], None, None, 1e-5), 1),
    (aten.native_layer_norm.default, (X.double(), [8, 64], None, W.expand(8, 64).double(), 1e-5), 1),
    (aten.native_layer_norm_backward.default, (X.half(), X.half(), [64], X[:, :1], X[:, :1], W.half(), W.half(),
                                               [True, True, True]), 3),
    (aten.native_layer_norm_backward.default, (X.double(), X.double(), [64], X[:, :1].double(), X[:, :1].double(),
                                               None, None, [True, False, False]), 1),
    (aten.native_layer_norm_backward.default, (X, X, [64], X[:, :1], X[:, :1], W, None, [False, True, False]), 2),
    (aten.native_layer_norm_backward.default, (X.double(), X.double(), [64], X[:, :1].double(), X[:, :1].double(),
                                               None, W.double(), [False, False, True]), 2),
    (aten._fused_rms_norm.default, (X.half(), [64], W.half(), None), 1),
    (aten._fused_rms_norm_backward.default, (X.bfloat16(), X.bfloat16(), [64], X[:, :1], W.bfloat16(), [True, True]), 3),
]
LAYER_NORM_GENOME = dict(GENOME, PARAM_SPLIT=16)


@pytest.mark.parametrize("overload,args,launches", LAYER_NORMS, ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_layer_norm_kernels_compile_for_sm90(captured, overload, args, launches):
    problem = LAYER_NORM.problem(overload, args, {})
    LAYER_NORM.implementation("layer_norm_triton").build(problem, LAYER_NORM_GENOME)(*args)
    assert compiles(captured, launches)


TARGET = torch.zeros(8, dtype=torch.long)
PIXELS = torch.zeros(2, 8, 8, dtype=torch.long)
NLL_GENOME = dict(BLOCK=32, BLOCK_C=64, ROW_SPLIT=256, num_warps=4, num_stages=2)
NLL_LOSSES = [  # (overload, args, ROW_SPLIT, kernel launches): mean/sum forwards launch partials then combine
    (aten.nll_loss_forward.default, (X, TARGET, None, 0, -100), 256, 1),
    (aten.nll_loss_forward.default, (X.t().contiguous().t(), TARGET.int(), X[0], 1, -100), 256, 2),
    (aten.nll_loss_forward.default, (X.double(), TARGET, None, 2, 3), 256, 2),
    (aten.nll_loss_forward.default, (X.half(), TARGET, X[0].half(), 1, -100), 1, 2),
    (aten.nll_loss_forward.default, (X.double(), TARGET, X[0].double(), 1, -100), 1024, 2),
    (aten.nll_loss_backward.default, (X[:, 0].half(), X.half(), TARGET, X[0].half(), 0, -100, X[0, 0].half()), 256, 1),
    (aten.nll_loss_backward.default, (X[0, 0].double(), X.double(), TARGET, None, 1, -100, X[0, 0].double()), 256, 1),
    (aten.nll_loss2d_forward.default, (X.view(2, 4, 8, 8), PIXELS, None, 1, -100), 256, 2),
    (aten.nll_loss2d_forward.default, (X.view(2, 4, 8, 8).bfloat16(), PIXELS, None, 2, -100), 32, 2),
    (aten.nll_loss2d_backward.default, (X.view(2, 4, 8, 8)[:, 0], X.view(2, 4, 8, 8), PIXELS, None, 0, -100, X[0, 0]),
     256, 1),
]


@pytest.mark.parametrize("overload,args,split,launches", NLL_LOSSES,
                         ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_nll_loss_kernels_compile_for_sm90(captured, overload, args, split, launches):
    problem = NLL_LOSS.problem(overload, args, {})
    NLL_LOSS.implementation("nll_loss_triton").build(problem, dict(NLL_GENOME, ROW_SPLIT=split))(*args)
    assert compiles(captured, launches)


C = torch.zeros(64)  # X: [batch 8, channels 64]
BATCH_NORMS = [
    (aten.native_batch_norm.default, (X, C, C, C, C, False, 0.1, 1e-5)),
    (aten.native_batch_norm.default, (X.double(), None, None, None, None, True, 0.1, 1e-5)),
    (aten._native_batch_norm_legit_functional.default, (X, C, None, C, C, True, 0.1, 1e-5)),
    (aten.native_batch_norm_backward.default, (X, X, C, None, None, C, C, True, 1e-5, [True, True, True])),
    (aten.native_batch_norm_backward.default, (X.double(), X.double(), None, C.double(), C.double(), None, None,
                                               False, 1e-5, [True, False, False])),
]
BATCH_NORM_GENOME = dict(BLOCK=256, num_warps=4, num_stages=2)


@pytest.mark.parametrize("overload,args", BATCH_NORMS, ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_batch_norm_kernels_compile_for_sm90(captured, overload, args):
    problem = BATCH_NORM.problem(overload, args, {})
    BATCH_NORM.implementation("batch_norm_triton").build(problem, BATCH_NORM_GENOME)(*args)
    assert compiles(captured)


GROUP_NORMS = [  # (overload, args, kernel launches); X: [N 8, C 64], HxW 1; weight/bias gradients take two (partials
    # per chunk of each channel's elements, their sums)
    (aten.native_group_norm.default, (X, C, C, 8, 64, 1, 4, 1e-5), 1),
    (aten.native_group_norm.default, (X.half(), None, None, 8, 64, 1, 64, 1e-5), 1),
    (aten.native_group_norm_backward.default, (X, X, X[:, :4], X[:, :4], C, 8, 64, 1, 4, [True, True, True]), 3),
    (aten.native_group_norm_backward.default, (X.bfloat16(), X.bfloat16(), X[:, :1], X[:, :1], C.bfloat16(), 8, 64, 1,
                                               1, [False, True, False]), 2),
    (aten.native_group_norm_backward.default, (X.double(), X.double(), X[:, :2].double(), X[:, :2].double(),
                                               C.double(), 8, 64, 1, 2, [False, False, True]), 2),
    (aten.native_group_norm_backward.default, (X.half(), X.half(), X[:, :4].half(), X[:, :4].half(), None, 8, 64, 1, 4,
                                               [True, False, False]), 1),
]


@pytest.mark.parametrize("overload,args,launches", GROUP_NORMS, ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_group_norm_kernels_compile_for_sm90(captured, overload, args, launches):
    problem = GROUP_NORM.problem(overload, args, {})
    GROUP_NORM.implementation("group_norm_triton").build(problem, dict(GENOME, PARAM_SPLIT=16))(*args)
    assert compiles(captured, launches)


SCANS = [
    (aten.cumsum.default, (torch.zeros(8, 1024), 1), {}),  # fp32, 16-divisible length: Triton 3.6's failing case
    (aten.cumsum.default, (X.half(), 1), {}),
    (aten.cumsum.default, (X.to(torch.int32), 0), {}),
    (aten.cumprod.default, (X.double(), 1), {}),
    (aten.cumprod.default, (X.bfloat16(), 0), {"dtype": torch.float32}),
]


@pytest.mark.parametrize("overload,args,kwargs", SCANS, ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_scan_kernel_compiles_for_sm90(captured, overload, args, kwargs):
    problem = SCAN.problem(overload, args, kwargs)
    SCAN.implementation("scan_triton").build(problem, GENOME)(*args, **kwargs)
    assert compiles(captured)


GATHERS = [
    (aten.index_select.default, (X.bfloat16(), 1, torch.zeros(4, dtype=torch.long))),
    (aten.embedding.default, (X, torch.zeros(3, 2, dtype=torch.int32))),
    (aten.embedding_dense_backward.default, (X.half(), torch.zeros(8, dtype=torch.long), 20, 3, False)),
    (aten.embedding_dense_backward.default, (X.double(), torch.zeros(8, dtype=torch.int32), 20, -1, False)),
]
GATHER_GENOME = dict(BLOCK=1024, BLOCK_N=16, BLOCK_D=64, num_warps=4, num_stages=1)


@pytest.mark.parametrize("overload,args", GATHERS, ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_gather_kernels_compile_for_sm90(captured, overload, args):
    problem = GATHER.problem(overload, args, {})
    GATHER.implementation("gather_triton").build(problem, GATHER_GENOME)(*args)
    assert compiles(captured)


OFFSETS = torch.tensor([0, 3, 3, 8])
JAGGEDS = [
    (aten._jagged_to_padded_dense_forward.default, (X.bfloat16(), [OFFSETS], [4], -1.0)),
    (aten._jagged_to_padded_dense_forward.default, (X[:, :3], [OFFSETS.int()], [6], 0.0)),
    (aten._padded_dense_to_jagged_forward.default, (X.half().view(4, 2, 64)[:3], [OFFSETS], 8)),
    (aten._padded_dense_to_jagged_forward.default, (X.view(4, 2, 64)[:3], [OFFSETS.int()], 8)),
]
SEGMENT_GENOME = dict(BLOCK_N=16, BLOCK_D=64, num_warps=4, num_stages=2)


@pytest.mark.parametrize("overload,args", JAGGEDS, ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_jagged_kernels_compile_for_sm90(captured, overload, args):
    problem = JAGGED.problem(overload, args, {})
    JAGGED.implementation("jagged_triton").build(problem, SEGMENT_GENOME)(*args)
    assert compiles(captured)


LENGTHS = torch.tensor([3, 0, 5])
# the kernels each LENGTHS_TO_ENDS way launches before the segment kernel
ENDS_KERNELS = {"cumsum": [], "block_scan": ["lengths_ends_kernel"], "block_sums": ["block_sums_kernel"]}
SEGMENT_REDUCES = [  # every reduction forward and backward, by lengths and offsets, with and without initial
    (aten.segment_reduce.default, (X, "sum"), {"lengths": LENGTHS}),
    (aten.segment_reduce.default, (X.bfloat16(), "mean"), {"offsets": OFFSETS.int(), "initial": 1.0}),
    (aten.segment_reduce.default, (X.half(), "max"), {"lengths": LENGTHS.int()}),
    (aten.segment_reduce.default, (X, "min"), {"offsets": OFFSETS, "initial": 0.5}),
    (aten._segment_reduce_backward.default, (X[:3], X[:3], X, "sum"), {"lengths": LENGTHS}),
    (aten._segment_reduce_backward.default, (X[:3].half(), X[:3].half(), X.half(), "mean"), {"offsets": OFFSETS}),
    (aten._segment_reduce_backward.default, (X[:3].bfloat16(), X[:3].bfloat16(), X.bfloat16(), "max"),
     {"lengths": LENGTHS.int()}),
    (aten._segment_reduce_backward.default, (X[:3], X[:3], X, "min"), {"offsets": OFFSETS.int(), "initial": 2.0}),
]


@pytest.mark.parametrize("overload,args,kwargs", SEGMENT_REDUCES,
                         ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_segment_reduce_kernels_compile_for_sm90(captured, overload, args, kwargs):
    problem = SEGMENT_REDUCE.problem(overload, args, kwargs)
    SEGMENT_REDUCE.implementation("segment_reduce_triton").build(problem, SEGMENT_GENOME)(*args, **kwargs)
    assert compiles(captured)


@pytest.mark.parametrize("way", ["cumsum", "block_scan", "block_sums"])
@pytest.mark.parametrize("overload,args,kwargs", [c for c in SEGMENT_REDUCES if c[0] == aten.segment_reduce.default],
                         ids=["sum-lengths", "mean-offsets", "max-lengths", "min-offsets"])
def test_ends_segment_reduce_compiles_for_sm90(captured, overload, args, kwargs, way):
    """The ends forward, from the lengths' running sum (the block scan's kernel first), their block sums (their
    kernel first), or from offsets, its row loop pipelined 3 deep."""
    problem = SEGMENT_REDUCE.problem(overload, args, kwargs)
    genome = dict(BLOCK_N=16, BLOCK_D=64, num_warps=4, num_stages=3, LENGTHS_TO_ENDS=way)
    if way != "cumsum" and not problem.param("by_lengths"):
        pytest.skip("only the cumsum way takes offsets")
    assert SEGMENT_REDUCE.implementation("segment_reduce_ends").supports(problem, genome) is None
    SEGMENT_REDUCE.implementation("segment_reduce_ends").build(problem, genome)(*args, **kwargs)
    *first, compiled = compiles(captured, launches=1 + (way != "cumsum"))
    assert [c.name for c in first] == ENDS_KERNELS[way]
    assert "async_copy_global_to_local" in compiled.asm["ttgir"]


SEGMENT_MAX_MIN_GRADIENTS = [c for c in SEGMENT_REDUCES
                             if c[0] == aten._segment_reduce_backward.default and c[1][-1] in ("max", "min")]


@pytest.mark.parametrize("tail_passes,fix,stages,way", [(2, "reread", 1, "cumsum"), (1, "reread", 1, "cumsum"),
                                                        (1, "reread", 4, "cumsum"), (1, "reread_rows", 3, "cumsum"),
                                                        (1, "reread_rows", 3, "block_scan"),
                                                        (1, "reread", 3, "block_sums")])
@pytest.mark.parametrize("overload,args,kwargs", SEGMENT_MAX_MIN_GRADIENTS, ids=["max", "min"])
def test_one_pass_segment_gradient_compiles_for_sm90(captured, overload, args, kwargs, tail_passes, fix, stages,
                                                     way):
    """The one-pass max/min gradient, with its largest held tile (256 rows of 32 columns over 8 warps), each way
    with the rows past it (and each TAIL_FIX), and from a block scan or block sums of lengths (their kernel first);
    with stages its tail loop is pipelined (asynchronous copies), at 1 it is not."""
    problem = SEGMENT_REDUCE.problem(overload, args, kwargs)
    genome = dict(RESIDENT_ROWS=256, TAIL_PASSES=tail_passes, TAIL_FIX=fix, BLOCK_N=32, BLOCK_D=32, num_warps=8,
                  num_stages=stages, LENGTHS_TO_ENDS=way)
    if way != "cumsum" and not problem.param("by_lengths"):
        pytest.skip("only the cumsum way takes offsets")
    assert SEGMENT_REDUCE.implementation("segment_reduce_backward_one_pass").supports(problem, genome) is None
    SEGMENT_REDUCE.implementation("segment_reduce_backward_one_pass").build(problem, genome)(*args, **kwargs)
    *first, compiled = compiles(captured, launches=1 + (way != "cumsum"))
    assert [c.name for c in first] == ENDS_KERNELS[way]
    assert ("async_copy_global_to_local" in compiled.asm["ttgir"]) == (stages > 1)


@pytest.mark.parametrize("overload,args,kwargs", SEGMENT_MAX_MIN_GRADIENTS, ids=["max", "min"])
def test_row_tile_segment_gradient_compiles_for_sm90(captured, overload, args, kwargs):
    """The row-tile max/min gradient's three kernels (segment ids, the row tiles, the shared gradients), with its
    largest row tile."""
    problem = SEGMENT_REDUCE.problem(overload, args, kwargs)
    genome = dict(BLOCK_R=128, BLOCK_D=64, num_warps=8, num_stages=1)
    SEGMENT_REDUCE.implementation("segment_reduce_backward_rows").build(problem, genome)(*args, **kwargs)
    assert compiles(captured, launches=3)


ROWS = torch.zeros(8, 40)
BUCKETIZES = [  # (overload, args, kwargs, genome): every search, 1-D and batched boundaries, each compared dtype
    (aten.bucketize.Tensor, (X, W), {}, dict(BLOCK=1024, search="binary", FANOUT=8, num_warps=4)),
    (aten.bucketize.Tensor, (X.bfloat16(), W[:40].bfloat16()), {"right": True},
     dict(BLOCK=512, search="staged", FANOUT=8, num_warps=4)),
    (aten.bucketize.Tensor, (X.to(torch.int8), W[:9].to(torch.int8)), {"out_int32": True},
     dict(BLOCK=2048, search="linear", FANOUT=8, num_warps=8)),
    (aten.bucketize.Tensor, (X.double(), W.double()), {"right": True},
     dict(BLOCK=256, search="binary", FANOUT=8, num_warps=1)),
    (aten.searchsorted.Tensor, (ROWS.half(), X.half()), {"out_int32": True},
     dict(BLOCK=1024, search="binary", FANOUT=8, num_warps=4)),
    (aten.searchsorted.Tensor, (ROWS.long(), X.long()), {"right": True},
     dict(BLOCK=1024, search="staged", FANOUT=8, num_warps=4)),
    (aten.searchsorted.Tensor, (ROWS, X), {}, dict(BLOCK=512, search="linear", FANOUT=8, num_warps=2)),
    (aten.bucketize.Tensor, (X, W), {}, dict(BLOCK=512, search="kary", FANOUT=16, num_warps=4)),
    (aten.searchsorted.Tensor, (ROWS.half(), X.half()), {"right": True},
     dict(BLOCK=256, search="kary", FANOUT=4, num_warps=2)),
]


@pytest.mark.parametrize("overload,args,kwargs,genome", BUCKETIZES, ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_bucketize_kernel_compiles_for_sm90(captured, overload, args, kwargs, genome):
    problem = BUCKETIZE.problem(overload, args, kwargs)
    BUCKETIZE.implementation("bucketize_triton").build(problem, genome)(*args)
    assert compiles(captured)
