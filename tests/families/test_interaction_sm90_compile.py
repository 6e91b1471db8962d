"""Every Triton kernel of the interaction family compiles for Hopper (sm_90) without a GPU, with the
arguments and constexprs its launcher passes (captured, as in test_sm90_compile), at DLRM's size: the gram
and backward kernels with every fp32 dot precision and with one block of every pair, tensor-core tf32 products
where the dots are not "ieee", CTA barriers around the scratch slot and, in the backward, the slot's atomic adds."""
import re

import pytest
import torch

from tests.families.test_sm90_compile import assert_compiled, captured_launches, compile_for_sm90
from torch_kevolve.families import INTERACTION
from torch_kevolve.families.interaction import triton_kernel
from torch_kevolve.families.interaction.calls import PAIRWISE_DOTS, PAIRWISE_DOTS_BACKWARD

FIRST, SECOND = torch.tril_indices(27, 27, -1)
GRAM, GATHER, BACKWARD = "pairwise_dots_gram_kernel", "pairwise_dots_gather_kernel", "pairwise_dots_backward_kernel"
CASES = [  # (overload, dtype, index dtype, genome, kernel)
    (PAIRWISE_DOTS, torch.float32, torch.int64, dict(algorithm="gram", fp32_precision="tf32x3", PROGRAMS_PER_SM=4,
                                                     BLOCK_P=32, BLOCK_D=64, num_warps=4, num_stages=1), GRAM),
    (PAIRWISE_DOTS, torch.float32, torch.int32, dict(algorithm="gram", fp32_precision="ieee", PROGRAMS_PER_SM=8,
                                                     BLOCK_P=128, BLOCK_D=128, num_warps=8, num_stages=2), GRAM),
    (PAIRWISE_DOTS, torch.float32, torch.int64, dict(algorithm="gram", fp32_precision="tf32_split", PROGRAMS_PER_SM=8,
                                                     BLOCK_P=512, BLOCK_D=128, num_warps=2, num_stages=1), GRAM),
    (PAIRWISE_DOTS, torch.float32, torch.int32, dict(algorithm="gram", fp32_precision="tf32_split", PROGRAMS_PER_SM=16,
                                                     BLOCK_P=64, BLOCK_D=32, num_warps=4, num_stages=1), GRAM),
    (PAIRWISE_DOTS, torch.bfloat16, torch.int32, dict(algorithm="gram", fp32_precision="tf32x3", PROGRAMS_PER_SM=16,
                                                      BLOCK_P=64, BLOCK_D=128, num_warps=8, num_stages=2), GRAM),
    (PAIRWISE_DOTS, torch.float16, torch.int64, dict(algorithm="gather", fp32_precision="tf32x3", PROGRAMS_PER_SM=4,
                                                     BLOCK_P=16, BLOCK_D=128, num_warps=4, num_stages=1), GATHER),
    (PAIRWISE_DOTS, torch.float64, torch.int64, dict(algorithm="gather", fp32_precision="tf32x3", PROGRAMS_PER_SM=4,
                                                     BLOCK_P=32, BLOCK_D=32, num_warps=2, num_stages=2), GATHER),
    (PAIRWISE_DOTS_BACKWARD, torch.float32, torch.int64, dict(algorithm="gram", fp32_precision="tf32x3",
                                                              PROGRAMS_PER_SM=2, BLOCK_P=32, BLOCK_D=64, num_warps=4,
                                                              num_stages=1), BACKWARD),
    (PAIRWISE_DOTS_BACKWARD, torch.float32, torch.int32, dict(algorithm="gram", fp32_precision="ieee",
                                                              PROGRAMS_PER_SM=4, BLOCK_P=64, BLOCK_D=128, num_warps=4,
                                                              num_stages=2), BACKWARD),
    (PAIRWISE_DOTS_BACKWARD, torch.float32, torch.int64, dict(algorithm="gram", fp32_precision="tf32x3",
                                                              PROGRAMS_PER_SM=8, BLOCK_P=512, BLOCK_D=128, num_warps=4,
                                                              num_stages=1), BACKWARD),
    (PAIRWISE_DOTS_BACKWARD, torch.bfloat16, torch.int32, dict(algorithm="gram", fp32_precision="tf32x3",
                                                               PROGRAMS_PER_SM=8, BLOCK_P=128, BLOCK_D=128,
                                                               num_warps=8, num_stages=2), BACKWARD),
]


@pytest.fixture
def captured(monkeypatch):
    return captured_launches(monkeypatch, triton_kernel)


def launched(overload, dtype, index_dtype, genome):
    """Build and call the Triton implementation at DLRM's size (27 rows, 351 pairs, dim 128)."""
    x = torch.zeros(8, 27, 128, dtype=dtype)
    pairs = (FIRST.to(index_dtype), SECOND.to(index_dtype))
    args = (x, *pairs) if overload == PAIRWISE_DOTS else (torch.zeros(8, 351, dtype=dtype), x, *pairs)
    problem = INTERACTION.problem(overload, args, {})
    impl = INTERACTION.implementation("interaction_triton")
    assert impl.supports(problem, genome) is None
    impl.build(problem, genome)(*args)


@pytest.mark.parametrize("overload,dtype,index_dtype,genome,kernel", CASES)
def test_interaction_kernels_compile_for_sm90(captured, overload, dtype, index_dtype, genome, kernel):
    launched(overload, dtype, index_dtype, genome)
    assert_compiled(captured, kernel)


@pytest.mark.parametrize("overload,dtype,index_dtype,genome,kernel", [c for c in CASES if c[-1] != GATHER])
def test_gram_and_backward_ptx(captured, overload, dtype, index_dtype, genome, kernel):
    launched(overload, dtype, index_dtype, genome)
    ptx = compile_for_sm90(*captured[0]).asm["ptx"]
    tensor_cores = dtype != torch.float32 or genome["fp32_precision"] != "ieee"
    assert bool(re.search(r"mma\S*\.tf32", ptx)) == tensor_cores
    assert "bar.sync" in ptx
    assert bool(re.search(r"(red|atom)\.global\S*\.add\.f32", ptx)) == (kernel == BACKWARD)
