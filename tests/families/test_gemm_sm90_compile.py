"""The GEMM kernel compiles for Hopper (sm_90) without a GPU, with the arguments and constexprs its launcher
passes (captured, as in test_sm90_compile): both fp32 precisions (tf32x3's split products too), fp16 and bf16,
mm and addmm, transposed and strided operands, and the largest tiles the family accepts."""
import pytest
import torch

from tests.families.test_sm90_compile import assert_compiled, captured_launches, compile_for_sm90
from torch_kevolve.families import GEMM
from torch_kevolve.families.gemm import triton_kernel
from torch_kevolve.families.gemm.calls import ADDMM, MM

CASES = [  # (overload, dtype, a transposed, b transposed, bias shape, genome)
    (MM, torch.float32, False, False, None, dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=32, GROUP_M=8, num_warps=8,
                                                 num_stages=3, precision="tf32x3")),
    (MM, torch.float32, True, False, None, dict(BLOCK_M=64, BLOCK_N=64, BLOCK_K=16, GROUP_M=1, num_warps=4,
                                                num_stages=4, precision="ieee")),
    (ADDMM, torch.float32, False, True, (256,), dict(BLOCK_M=128, BLOCK_N=256, BLOCK_K=32, GROUP_M=8, num_warps=8,
                                                    num_stages=3, precision="tf32x3")),
    (ADDMM, torch.float32, False, True, (256, 256), dict(BLOCK_M=16, BLOCK_N=32, BLOCK_K=64, GROUP_M=4, num_warps=4,
                                                       num_stages=2, precision="ieee")),
    (MM, torch.float16, False, True, None, dict(BLOCK_M=128, BLOCK_N=256, BLOCK_K=64, GROUP_M=8, num_warps=8,
                                                num_stages=3, precision="tf32x3")),
    (ADDMM, torch.bfloat16, True, True, (256,), dict(BLOCK_M=64, BLOCK_N=128, BLOCK_K=64, GROUP_M=8, num_warps=4,
                                                    num_stages=4, precision="tf32x3")),
]


@pytest.fixture
def captured(monkeypatch):
    return captured_launches(monkeypatch, triton_kernel)


def _operand(rows, cols, dtype, transposed):
    return torch.zeros(cols, rows, dtype=dtype).t() if transposed else torch.zeros(rows, cols, dtype=dtype)


def _ptx(captured):
    """The PTX of the captured launch, compiled as a GPU launch runs it (widened operands only in the interpreter)."""
    (kernel, args, kwargs), = captured
    return compile_for_sm90(kernel, args, {**kwargs, "WIDEN": False}).asm["ptx"]


@pytest.mark.parametrize("overload,dtype,a_t,b_t,bias,genome", CASES)
def test_gemm_kernel_compiles_for_sm90(captured, overload, dtype, a_t, b_t, bias, genome):
    a, b = _operand(256, 48, dtype, a_t), _operand(48, 256, dtype, b_t)  # no block overruns M or N
    args = (a, b) if overload == MM else (torch.zeros(bias, dtype=dtype), a, b, 0.5, 2.0)
    problem = GEMM.problem(overload, args, {})
    impl = GEMM.implementation("gemm_triton")
    # The operands as the case lays them out (a copy is needed only when they are not both K-major already).
    genome = dict(genome, operands="k_major" if (a_t, b_t) == (False, True) else "as_is", SPLIT_K=1)
    assert impl.supports(problem, genome) is None
    impl.build(problem, genome)(*args)
    assert_compiled(captured, "gemm_kernel")
    ptx = _ptx(captured)
    # Hopper tensor cores run the dot (wgmma) unless fp32 is asked for exact IEEE FMAs.
    assert ("wgmma" in ptx) == (dtype != torch.float32 or genome["precision"] == "tf32x3")


def test_tf32x3_splits_the_products(captured):
    """tf32x3 splits each fp32 operand into tf32 parts (cvt.rna.tf32) and issues three tensor-core products
    (hi*hi + hi*lo + lo*hi) where single-pass tf32, which the family never offers, issues one."""
    a, b = torch.zeros(256, 48), torch.zeros(48, 256)
    impl, problem = GEMM.implementation("gemm_triton"), GEMM.problem(MM, (a, b), {})
    impl.build(problem, impl.default_genome(problem))(a, b)
    (kernel, args, kwargs), = captured
    split = compile_for_sm90(kernel, args, kwargs).asm["ptx"]
    single = compile_for_sm90(kernel, args, {**kwargs, "PRECISION": "tf32"}).asm["ptx"]
    assert split.count("wgmma.mma_async") == 3 * single.count("wgmma.mma_async") > 0
    assert "cvt.rna.tf32" in split and "cvt.rna.tf32" not in single


def test_split_k_kernels_compile_for_sm90(captured):
    """K split over programs: the partial products and the kernel that sums them and applies addmm's epilogue."""
    a, b = torch.zeros(512, 128).t(), torch.zeros(512, 128)  # a weight-gradient-like M-major a, copied K-major
    args = (torch.zeros(128), a, b, 0.5, 2.0)
    impl = GEMM.implementation("gemm_triton")
    genome = dict(impl.genome_space.default(), SPLIT_K=4)
    problem = GEMM.problem(ADDMM, args, {})
    assert impl.supports(problem, genome) is None
    impl.build(problem, genome)(*args)
    assert_compiled(captured, "gemm_kernel", "gemm_split_sum_kernel")


@pytest.mark.parametrize("genome", [dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=32, GROUP_M=8, num_warps=8, num_stages=3),
                                    dict(BLOCK_M=64, BLOCK_N=256, BLOCK_K=16, GROUP_M=1, num_warps=8, num_stages=4)])
@pytest.mark.parametrize("relu", [False, True], ids=["addmm", "linear_relu"])
def test_presplit_kernels_compile_for_sm90(monkeypatch, genome, relu):
    """The part split of both operands and the product on the parts (with or without the ReLU epilogue):
    tf32 tensor-core products (wgmma) with no tf32 conversion left in the product loop (the parts are tf32
    numbers already)."""
    from torch_kevolve.families.gemm import presplit_kernel
    from torch_kevolve.families.gemm.relu_calls import ADDMM_RELU

    captured = captured_launches(monkeypatch, presplit_kernel)
    args = (torch.zeros(256), torch.zeros(256, 48), torch.zeros(256, 48).t(), 0.5, 2.0)
    overload, args = (ADDMM_RELU, args[:3]) if relu else (ADDMM, args)
    impl, problem = GEMM.implementation("gemm_tf32x3_presplit"), GEMM.problem(overload, args, {})
    assert impl.supports(problem, genome) is None
    impl.build(problem, genome)(*args)
    assert_compiled(captured, "tf32_parts_kernel", "tf32_parts_kernel", "gemm_parts_kernel")
    ptx = compile_for_sm90(*captured[2]).asm["ptx"]
    wgmma = [line for line in ptx.splitlines() if "wgmma.mma_async" in line]
    assert wgmma and all(".tf32" in line for line in wgmma) and "cvt.rna.tf32" not in ptx
    # Each K tile's products are promoted to the running sum by fp32 adds, one per accumulator element a thread
    # holds (chained through the MMAs instead, the sum lost low bits at every step on the H200).
    promotions = sum(line.strip().startswith(("add.f32", "add.rn.f32")) for line in ptx.splitlines())
    assert promotions >= genome["BLOCK_M"] * genome["BLOCK_N"] // (32 * genome["num_warps"])


def test_presplit_product_loads_16_byte_vectors_whatever_k(monkeypatch):
    """K = 479 (DLRM's interaction width): the parts' rows are padded to a multiple of BLOCK_K, so the product's
    tile copies are 16 bytes wide, as for an aligned K (unpadded, a row stride of 479 floats forced 4-byte copies)."""
    from torch_kevolve.families.gemm import presplit_kernel

    captured = captured_launches(monkeypatch, presplit_kernel)
    args = (torch.zeros(64, 479), torch.zeros(479, 96))
    genome = dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=32, GROUP_M=8, num_warps=8, num_stages=3)
    GEMM.implementation("gemm_tf32x3_presplit").build(GEMM.problem(MM, args, {}), genome)(*args)
    ptx = compile_for_sm90(*captured[2]).asm["ptx"]
    copies = [line for line in ptx.splitlines() if "cp.async.c" in line and "shared.global" in line]
    assert copies and all(line.rstrip().split(",")[-2].strip() == "0x10" for line in copies)


@pytest.mark.parametrize("relu", [False, True], ids=["addmm", "linear_relu"])
def test_b_parts_kernels_compile_for_sm90(monkeypatch, relu):
    """Only b is split by a pass of its own; the product rounds its a tile in registers and feeds it to the
    tensor cores from there (wgmma's register operand), while b's parts come from shared memory (descriptors),
    and promotes each K tile's products by fp32 adds as gemm_parts_kernel does."""
    from torch_kevolve.families.gemm import b_parts_kernel, presplit_kernel
    from torch_kevolve.families.gemm.relu_calls import ADDMM_RELU

    captured = captured_launches(monkeypatch, b_parts_kernel, presplit_kernel)
    args = (torch.zeros(256), torch.zeros(256, 48), torch.zeros(256, 48).t(), 0.5, 2.0)
    overload, args = (ADDMM_RELU, args[:3]) if relu else (ADDMM, args)
    genome = dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=32, GROUP_M=8, num_warps=8, num_stages=3)
    impl, problem = GEMM.implementation("gemm_tf32x3_b_parts"), GEMM.problem(overload, args, {})
    assert impl.supports(problem, genome) is None
    impl.build(problem, genome)(*args)
    assert_compiled(captured, "tf32_parts_kernel", "gemm_b_parts_kernel")
    ptx = compile_for_sm90(*captured[1]).asm["ptx"]
    wgmma = [line for line in ptx.splitlines() if "wgmma.mma_async" in line]
    # 3 products of BLOCK_K / 8 tf32 steps per K tile; operands: {d...}, {a registers}, b descriptor, ...
    assert len(wgmma) == 3 * genome["BLOCK_K"] // 8
    assert all(".tf32" in line and line.split("}, ")[1].startswith("{%r") for line in wgmma)
    promotions = sum(line.strip().startswith(("add.f32", "add.rn.f32")) for line in ptx.splitlines())
    assert promotions >= genome["BLOCK_M"] * genome["BLOCK_N"] // (32 * genome["num_warps"])
