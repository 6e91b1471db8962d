"""The GEMM family: the Triton kernel against a float64 matmul computed here, for mm and addmm, every operand
layout, [N], [1, N] and [M, N] biases, beta and alpha, dims off the block grid (K = 13 as in DLRM), M or N = 1,
empty dims, fp32, fp16 and bf16; generated inputs of every distribution; rooflines, genome rules and the calls
it refuses."""
import pytest
import torch

from torch_kevolve.families import GEMM, family_for
from torch_kevolve.families.base import DISTRIBUTIONS, Unsupported
from torch_kevolve.families.checking import Mismatch, check_kernel, compare
from torch_kevolve.families.gemm.calls import ADDMM, MM
from torch_kevolve.families.gemm.relu_calls import ADDMM_RELU
from torch_kevolve.families.schema import call_in_schema_order
from torch_kevolve.key import DeviceInfo, OpKey

g = torch.Generator().manual_seed(0)
IMPL = GEMM.implementation("gemm_triton")
# 16-wide tiles: several programs per output, a partial group of GROUP_M tile rows, several K steps.
SMALL = dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=16, GROUP_M=4, num_warps=4, num_stages=2, precision="tf32x3",
             operands="as_is", SPLIT_K=1)
# K cut into 4 parts summed by a second kernel (K = 64: 4 parts of one tile; K = 40: a ragged last part and an
# empty one; K = 13: empty parts), operands copied K-major first.
SPLIT = dict(SMALL, operands="k_major", SPLIT_K=4)


def rand(*shape, dtype=torch.float32):
    return torch.randn(*shape, generator=g).to(dtype)


def transposed(t):
    """`t`'s values as the transpose of a row-major tensor (nn.Linear's weight.t())."""
    return t.t().contiguous().t()


CALLS = [  # (overload, args)
    (MM, (rand(37, 13), rand(13, 20))),
    (MM, (rand(37, 40), transposed(rand(40, 45)))),
    (MM, (transposed(rand(50, 33)), rand(33, 18))),
    (MM, (rand(21, 64)[:, ::2], rand(64, 34)[::2, ::2])),
    (MM, (rand(1, 29), rand(29, 35))),
    (MM, (rand(40, 29), rand(29, 1))),
    (MM, (rand(0, 5), rand(5, 7))),
    (MM, (rand(3, 0), rand(0, 7))),
    (MM, (rand(33, 24, dtype=torch.bfloat16), transposed(rand(24, 19, dtype=torch.bfloat16)))),
    (MM, (transposed(rand(18, 40, dtype=torch.float16)), rand(40, 23, dtype=torch.float16))),
    (ADDMM, (rand(20), rand(37, 13), transposed(rand(13, 20)))),
    (ADDMM, (rand(1, 20), rand(37, 13), rand(13, 20), 1, 1)),
    (ADDMM, (rand(17, 35), rand(17, 40), rand(40, 35), 0.5, -2.0)),
    (ADDMM, (transposed(rand(17, 35)), transposed(rand(17, 40)), rand(40, 35), 3, 0.25)),
    (ADDMM, (rand(9), rand(1, 13), rand(13, 9), -1.5, 1)),
    (ADDMM, (rand(9), rand(0, 13), rand(13, 9))),
    (ADDMM, (rand(9), rand(4, 0), rand(0, 9), 2.0, 1.0)),
    (ADDMM, (rand(19, dtype=torch.bfloat16), rand(33, 24, dtype=torch.bfloat16), rand(24, 19, dtype=torch.bfloat16))),
    (ADDMM, (rand(33, 19, dtype=torch.float16), rand(33, 24, dtype=torch.float16), rand(24, 19, dtype=torch.float16),
             0.5, 2.0)),
]


def ids(value):
    return str(value) if isinstance(value, torch._ops.OpOverload) else ""


def float64_product(overload, args):
    """beta * bias + alpha * (a @ b) in float64 (beta 1 and no bias for mm; beta 0 drops the bias, NaN too)."""
    bias, a, b, beta, alpha = (None, *args, 1, 1) if overload == MM else (*args, 1, 1)[:5]
    out = alpha * (a.double() @ b.double())
    return out if bias is None or beta == 0 else out + beta * bias.double()


def assert_matches_float64_matmul(impl, overload, args, genome):
    """`impl` with `genome` (None: its default) returns eager's shape, dtype and strides and the float64 product."""
    problem = GEMM.problem(overload, args, {})
    got = impl.build(problem, genome or impl.default_genome(problem))(*args)
    eager = call_in_schema_order(overload, args)
    assert (got.shape, got.dtype, got.stride()) == (eager.shape, eager.dtype, eager.stride())
    compare(GEMM, problem, (got,), (float64_product(overload, args),), problem.dim("K") + 1)


@pytest.mark.parametrize("overload,args", CALLS, ids=ids)
@pytest.mark.parametrize("genome", [None, SMALL, SPLIT], ids=["default", "small", "split"])
def test_kernel_matches_float64_matmul(overload, args, genome, poisoned_allocations):
    assert_matches_float64_matmul(IMPL, overload, args, genome)


def test_a_wrong_product_fails_the_comparison():
    """The comparison these tests rely on catches one wrong K term (a kernel that skipped the K tail)."""
    a, b = rand(37, 13), rand(13, 20)
    problem = GEMM.problem(MM, (a, b), {})
    with pytest.raises(Mismatch):
        compare(GEMM, problem, ((a[:, :12] @ b[:12]),), (float64_product(MM, (a, b)),), 14)


def test_beta_zero_ignores_the_bias_nan_included():
    args = (torch.full((20,), float("nan")), rand(37, 13), rand(13, 20), 0, 1.0)
    got = IMPL.build(GEMM.problem(ADDMM, args, {}), SMALL)(*args)
    assert not got.isnan().any()
    torch.testing.assert_close(got.double(), float64_product(ADDMM, args), rtol=1.3e-6, atol=1e-5)


@pytest.mark.parametrize("overload", (MM, ADDMM), ids=str)  # linear+ReLU: test_gemm_presplit
def test_generated_inputs(overload):
    for problem in GEMM.example_problems(overload):
        for genome in (IMPL.default_genome(problem), SMALL):
            check_kernel(GEMM, problem, IMPL.build(problem, genome), torch.device("cpu"), seeds=(0, 1),
                         dists=DISTRIBUTIONS)


def test_generated_inputs_keep_the_recorded_layouts():
    bias = transposed(rand(17, 35))
    problem = GEMM.problem(ADDMM, (bias, transposed(rand(17, 40)), rand(40, 70)[:, ::2], 0.5, 2.0), {})
    assert [problem.param(p) for p in ("a_layout", "b_layout", "bias", "bias_layout", "beta", "alpha")] == [
        "column", "strided", "full", "column", 0.5, 2.0]
    bias, a, b, beta, alpha = GEMM.make_inputs(problem, 0, "normal", torch.device("cpu"))
    assert a.t().is_contiguous() and bias.t().is_contiguous() and b.stride() == (70, 2)
    assert (beta, alpha) == (0.5, 2.0) and GEMM.problem(ADDMM, (bias, a, b, beta, alpha), {}) == problem
    assert not problem.contiguous


def test_keys_separate_layouts_biases_and_scales():
    a, b = rand(8, 16), rand(16, 32)
    problems = [GEMM.problem(MM, (a, b), {}), GEMM.problem(MM, (a, transposed(b)), {}),
                GEMM.problem(MM, (transposed(a), b), {}), GEMM.problem(ADDMM, (rand(32), a, b), {}),
                GEMM.problem(ADDMM, (rand(8, 32), a, b), {}), GEMM.problem(ADDMM, (rand(32), a, b, 2, 1), {})]
    assert len({OpKey.of(p, DeviceInfo("cuda", "H200", "sm_90")).id for p in problems}) == len(problems)


def test_problem_roofline_and_registry():
    problem = GEMM.problem(ADDMM, CALLS[10][1], {})
    assert tuple(problem.dim(d) for d in ("M", "N", "K")) == (37, 20, 13)
    assert problem.param("bias") == "row" and problem.param("b_layout") == "column"
    assert GEMM.flops(problem) == 2 * 37 * 20 * 13
    assert GEMM.bytes_moved(problem) == 4 * (37 * 13 + 13 * 20 + 20 + 37 * 20)
    assert GEMM.reduced_extent(problem, CALLS[10][1]) == 14
    full = GEMM.problem(ADDMM, CALLS[12][1], {})
    assert GEMM.bytes_moved(full) == 2 * 4 * 17 * 35 + 4 * (17 * 40 + 40 * 35)
    assert family_for(MM) is family_for(ADDMM) is family_for(ADDMM_RELU) is GEMM
    relu_args = CALLS[10][1][:3]
    linear_relu = GEMM.problem(ADDMM_RELU, relu_args, {})
    assert linear_relu.op == "kevolve.addmm_relu.default" and linear_relu.params == problem.params
    assert GEMM.bytes_moved(linear_relu) == GEMM.bytes_moved(problem) and GEMM.flops(linear_relu) == GEMM.flops(problem)


def test_genome_rules():
    half = GEMM.problem(MM, (rand(8, 16, dtype=torch.bfloat16), rand(16, 8, dtype=torch.bfloat16)), {})
    fp32 = GEMM.problem(MM, (rand(8, 16), rand(16, 8)), {})
    ieee = {**IMPL.genome_space.default(), "precision": "ieee", "SPLIT_K": 1, "BLOCK_M": 16, "BLOCK_N": 16}
    assert "no meaning" in IMPL.supports(half, ieee) and IMPL.supports(fp32, ieee) is None
    assert {g["precision"] for g in IMPL.genomes(half)} == {"tf32x3"}
    assert {g["precision"] for g in IMPL.genomes(fp32)} == {"tf32x3", "ieee"}
    wide = GEMM.problem(MM, (rand(256, 16), rand(16, 256)), {})
    big = dict(ieee, BLOCK_M=128, BLOCK_N=256, BLOCK_K=64, num_stages=4)
    assert "shared memory" in IMPL.supports(wide, big)
    assert "registers" in IMPL.supports(wide, dict(ieee, BLOCK_M=128, BLOCK_N=256, num_warps=4))
    assert "tf32" not in dict(IMPL.genome_space.choices)["precision"]  # single-pass tf32 loses accuracy
    k_major = GEMM.problem(MM, (rand(8, 16), transposed(rand(16, 8))), {})
    assert "K-major already" in IMPL.supports(k_major, dict(ieee, operands="as_is"))
    assert IMPL.supports(fp32, dict(ieee, operands="as_is")) is None
    long_k = GEMM.problem(MM, (rand(8, 256), rand(256, 8)), {})
    assert IMPL.supports(long_k, dict(ieee, SPLIT_K=4)) is None  # 8 K tiles of 32
    assert "too short" in IMPL.supports(long_k, dict(ieee, SPLIT_K=8))
    many_tiles = GEMM.problem(MM, (rand(2048, 256), rand(256, 1152)), {})  # 16 x 9 tiles of 128
    assert "fill the SMs" in IMPL.supports(many_tiles, dict(ieee, BLOCK_M=128, BLOCK_N=128, SPLIT_K=2))
    linear_relu = GEMM.problem(ADDMM_RELU, (rand(8), rand(8, 16), rand(16, 8)), {})
    assert "gemm_tf32x3_presplit" in IMPL.supports(linear_relu, ieee) and IMPL.genomes(linear_relu) == []


def test_blocks_do_not_overrun_their_padded_dimension():
    """A matrix-vector product keeps 16-wide tiles on its side of 1 (its default adapts); M = 20 takes blocks up
    to 32; the pre-split kernel, whose smallest BLOCK_N is 64, keeps only that for N = 13."""
    column = GEMM.problem(MM, (rand(4096, 64), rand(64, 1)), {})
    default = IMPL.default_genome(column)
    assert default["BLOCK_N"] == 16 and default["BLOCK_M"] == 128
    assert "BLOCK_N=32 overruns N=1" in IMPL.supports(column, dict(default, BLOCK_N=32))
    rows_20 = GEMM.problem(MM, (rand(20, 64), rand(64, 64)), {})  # M padded to 32
    assert IMPL.supports(rows_20, dict(default, BLOCK_M=32, BLOCK_N=64)) is None
    assert "BLOCK_M=64 overruns M=20" in IMPL.supports(rows_20, dict(default, BLOCK_M=64, BLOCK_N=64))
    thin = GEMM.problem(MM, (rand(512, 64), rand(64, 13)), {})
    presplit = GEMM.implementation("gemm_tf32x3_presplit")
    assert {g["BLOCK_N"] for g in presplit.genomes(thin)} == {64}
    assert {g["BLOCK_N"] for g in presplit.genomes(GEMM.problem(MM, (rand(512, 64), rand(64, 200)), {}))} == {64, 128, 256}


def test_the_default_splits_k_only_for_few_output_tiles():
    """A weight-gradient-like product (64 tiles, K = 4096) splits K by default; a forward-like one (256 tiles)
    and a short K do not."""
    weight_grad = GEMM.problem(MM, (torch.empty(4096, 1024).t(), torch.empty(4096, 1024)), {})
    forward = GEMM.problem(MM, (torch.empty(4096, 1024), torch.empty(1024, 1024).t()), {})
    short = GEMM.problem(MM, (rand(8, 16), rand(16, 8)), {})
    assert [IMPL.default_genome(p)["SPLIT_K"] for p in (weight_grad, forward, short)] == [4, 1, 1]


@pytest.mark.parametrize("overload,args,reason", [
    (MM, (rand(4, 5).double(), rand(5, 6).double()), "dtypes"),
    (MM, (rand(4, 5).int(), rand(5, 6).int()), "dtypes"),
    (MM, (rand(4, 5), rand(5, 6).half()), "dtypes"),
    (ADDMM, (rand(6).half(), rand(4, 5), rand(5, 6)), "dtypes"),
    (MM, (rand(4, 5), rand(4, 6)), "inner dims differ"),
    (ADDMM, (rand(4, 1), rand(4, 5), rand(5, 6)), r"not \[N\], \[1, N\] or \[M, N\]"),
    (ADDMM, (rand(4), rand(4, 5), rand(5, 6)), r"not \[N\], \[1, N\] or \[M, N\]"),
    (ADDMM, (rand(6), rand(4, 5), rand(5, 6), 1j, 1), "real Python number"),
    (MM, (rand(4, 5).to_sparse(), rand(5, 6)), "dense"),
    (ADDMM_RELU, (rand(6).half(), rand(4, 5).half(), rand(5, 6).half()), "fp32 operands"),
    (ADDMM_RELU, (rand(4), rand(4, 5), rand(5, 6)), r"not \[N\], \[1, N\] or \[M, N\]"),
])
def test_unsupported_calls(overload, args, reason):
    with pytest.raises(Unsupported, match=reason):
        GEMM.problem(overload, args, {})
