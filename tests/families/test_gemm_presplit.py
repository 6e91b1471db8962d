"""The split-operand 3xTF32 kernels, gemm_tf32x3_presplit (both operands split first) and gemm_tf32x3_b_parts
(b split first, a in the product's loop): the tf32 parts of an operand (against bit arithmetic done here in
torch), and each product against a float64 matmul for fp32 mm, addmm and linear+ReLU (kevolve::addmm_relu) in
every layout, ragged and empty dims, NaN kept by the ReLU, a read only up to K; the calls they leave to
gemm_triton."""
import pytest
import torch

from tests.families.test_gemm import CALLS, assert_matches_float64_matmul, float64_product, ids, rand
from torch_kevolve.families import GEMM
from torch_kevolve.families.base import DISTRIBUTIONS
from torch_kevolve.families.checking import check_kernel, compare
from torch_kevolve.families.gemm.calls import ADDMM, MM
from torch_kevolve.families.gemm.presplit_kernel import tf32_parts
from torch_kevolve.families.gemm.relu_calls import ADDMM_RELU

PRESPLIT = GEMM.implementation("gemm_tf32x3_presplit")
SPLIT = [PRESPLIT, GEMM.implementation("gemm_tf32x3_b_parts")]
SMALL = dict(BLOCK_M=64, BLOCK_N=64, BLOCK_K=16, GROUP_M=4, num_warps=4, num_stages=2)
FP32_CALLS = [(overload, args) for overload, args in CALLS
              if all(a.dtype == torch.float32 for a in args if isinstance(a, torch.Tensor))]
RELU_CALLS = [(ADDMM_RELU, args[:3]) for overload, args in FP32_CALLS
              if overload == ADDMM and args[3:] in ((), (1, 1))]
TF32_DROPPED_BITS = 13  # fp32 keeps 23 mantissa bits, tf32 10


def tf32_nearest(x: torch.Tensor) -> torch.Tensor:
    """x rounded to 10 mantissa bits, half away from zero, by integer arithmetic on its bits."""
    bits = x.view(torch.int32)
    half = 1 << (TF32_DROPPED_BITS - 1)
    return ((bits + half) & ~((1 << TF32_DROPPED_BITS) - 1)).view(torch.float32)


def test_parts_are_tf32_numbers_that_sum_to_the_operand():
    x = torch.cat([rand(40, 70) * 10.0 ** torch.randint(-20, 20, (40, 1)).float(), torch.zeros(1, 70)])
    hi, lo = tf32_parts(x.t())
    assert hi.shape == lo.shape == (70, 41) and hi.is_contiguous() and lo.is_contiguous()
    assert torch.equal(hi, tf32_nearest(x.t()))
    assert torch.equal(lo, tf32_nearest(x.t() - hi))
    low_bits = (1 << TF32_DROPPED_BITS) - 1
    assert not (hi.view(torch.int32) & low_bits).any() and not (lo.view(torch.int32) & low_bits).any()
    rel = ((hi.double() + lo.double()) - x.t().double()).abs() / x.t().double().abs().clamp_min(1e-30)
    assert rel.max() <= 2.0 ** -21 and (lo.abs() <= 2.0 ** -11 * x.t().abs()).all()


def test_parts_are_padded_with_zero_columns():
    x = rand(30, 50)
    hi, lo = tf32_parts(x.t(), 64)
    assert hi.shape == lo.shape == (50, 64) and hi.is_contiguous()
    assert torch.equal(hi[:, :30], tf32_nearest(x.t())) and torch.equal(lo[:, :30], tf32_nearest(x.t() - hi[:, :30]))
    assert not hi[:, 30:].any() and not lo[:, 30:].any()
    with pytest.raises(ValueError, match="cannot hold"):
        tf32_parts(x, 20)


def impl_name(impl):
    return impl.name


@pytest.mark.parametrize("impl", SPLIT, ids=impl_name)
@pytest.mark.parametrize("overload,args", FP32_CALLS, ids=ids)
@pytest.mark.parametrize("genome", [None, SMALL], ids=["default", "small"])
def test_product_matches_float64_matmul(impl, overload, args, genome, poisoned_allocations):
    assert_matches_float64_matmul(impl, overload, args, genome)


@pytest.mark.parametrize("impl", SPLIT, ids=impl_name)
@pytest.mark.parametrize("args", [args for _, args in RELU_CALLS], ids=lambda a: "x".join(map(str, a[1].shape)))
@pytest.mark.parametrize("genome", [None, SMALL], ids=["default", "small"])
def test_linear_relu_matches_float64(impl, args, genome, poisoned_allocations):
    problem = GEMM.problem(ADDMM_RELU, args, {})
    got = impl.build(problem, genome or impl.default_genome(problem))(*args)
    assert (got.shape, got.dtype, got.is_contiguous()) == (torch.Size([args[1].shape[0], args[2].shape[1]]),
                                                           torch.float32, True)
    want = float64_product(ADDMM, args).relu()
    compare(GEMM, problem, (got,), (want,), problem.dim("K") + 1)


@pytest.mark.parametrize("impl", SPLIT, ids=impl_name)
def test_linear_relu_keeps_nan(impl):
    bias = torch.tensor([float("nan"), -1.0, 1.0])
    a, b = torch.ones(2, 4), torch.zeros(4, 3)
    got = impl.build(GEMM.problem(ADDMM_RELU, (bias, a, b), {}), SMALL)(bias, a, b)
    assert got[:, 0].isnan().all() and got[:, 1:].tolist() == [[0.0, 1.0]] * 2


@pytest.mark.parametrize("impl", SPLIT, ids=impl_name)
def test_a_is_read_only_up_to_k(impl):
    """K = 21 in tiles of 16: the columns of a's rows past K (NaN here, a wider buffer's) are never multiplied."""
    wide = torch.full((40, 32), float("nan"))
    wide[:, :21] = rand(40, 21)
    a, b = wide[:, :21], rand(21, 24)
    got = impl.build(GEMM.problem(MM, (a, b), {}), SMALL)(a, b)
    assert torch.allclose(got.double(), a.double() @ b.double(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", SPLIT, ids=impl_name)
def test_generated_fp32_inputs(impl):
    for overload in GEMM.overloads:
        for problem in GEMM.example_problems(overload):
            if problem.dtype("a") == torch.float32:
                check_kernel(GEMM, problem, impl.build(problem, SMALL), torch.device("cpu"), seeds=(0, 1),
                             dists=DISTRIBUTIONS)


@pytest.mark.parametrize("impl", SPLIT, ids=impl_name)
def test_genome_rules(impl):
    half = GEMM.problem(MM, (rand(8, 16, dtype=torch.bfloat16), rand(16, 8, dtype=torch.bfloat16)), {})
    fp32 = GEMM.problem(MM, (rand(256, 16), rand(16, 256)), {})
    default = impl.genome_space.default()
    assert "no tf32 parts" in impl.supports(half, default) and impl.genomes(half) == []
    assert impl.supports(fp32, default) is None
    assert "shared memory" in impl.supports(fp32, dict(default, BLOCK_N=256, BLOCK_K=64, num_stages=3))
    assert "registers" in impl.supports(fp32, dict(default, BLOCK_N=256, num_warps=4, num_stages=2))


def test_b_parts_fits_more_stages_than_presplit():
    """A stage of b_parts holds one a tile and two b part tiles, a stage of presplit four part tiles: 128 x 128 x
    64 tiles fit shared memory in one presplit stage, in two of b_parts but not three."""
    fp32 = GEMM.problem(MM, (rand(256, 16), rand(16, 256)), {})
    b_parts = SPLIT[1]
    wide_k = dict(b_parts.genome_space.default(), BLOCK_K=64)
    assert "shared memory" in PRESPLIT.supports(fp32, dict(wide_k, num_stages=2))
    assert b_parts.supports(fp32, dict(wide_k, num_stages=2)) is None
    assert "shared memory" in b_parts.supports(fp32, dict(wide_k, num_stages=3))
