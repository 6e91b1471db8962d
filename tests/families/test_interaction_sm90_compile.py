"""Every Triton kernel of the interaction family compiles for Hopper (sm_90) without a GPU, with the
arguments and constexprs its launcher passes (captured, as in test_sm90_compile), at DLRM's size."""
import pytest
import torch

from tests.families.test_sm90_compile import assert_compiled, captured_launches
from torch_kevolve.families import INTERACTION
from torch_kevolve.families.interaction import triton_kernel
from torch_kevolve.families.interaction.calls import PAIRWISE_DOTS, PAIRWISE_DOTS_BACKWARD

FIRST, SECOND = torch.tril_indices(27, 27, -1)
CASES = [  # (overload, dtype, index dtype, genome, kernel)
    (PAIRWISE_DOTS, torch.float32, torch.int64, dict(algorithm="gram", BLOCK_P=32, BLOCK_D=64, num_warps=4, num_stages=1),
     "pairwise_dots_gram_kernel"),
    (PAIRWISE_DOTS, torch.bfloat16, torch.int32, dict(algorithm="gram", BLOCK_P=64, BLOCK_D=128, num_warps=8, num_stages=2),
     "pairwise_dots_gram_kernel"),
    (PAIRWISE_DOTS, torch.float16, torch.int64, dict(algorithm="gather", BLOCK_P=16, BLOCK_D=128, num_warps=4, num_stages=1),
     "pairwise_dots_gather_kernel"),
    (PAIRWISE_DOTS, torch.float64, torch.int64, dict(algorithm="gather", BLOCK_P=32, BLOCK_D=32, num_warps=2, num_stages=2),
     "pairwise_dots_gather_kernel"),
    (PAIRWISE_DOTS_BACKWARD, torch.float32, torch.int64, dict(algorithm="gram", BLOCK_P=32, BLOCK_D=64, num_warps=4,
                                                              num_stages=1), "pairwise_dots_backward_kernel"),
    (PAIRWISE_DOTS_BACKWARD, torch.bfloat16, torch.int32, dict(algorithm="gram", BLOCK_P=128, BLOCK_D=128, num_warps=8,
                                                               num_stages=2), "pairwise_dots_backward_kernel"),
]


@pytest.fixture
def captured(monkeypatch):
    return captured_launches(monkeypatch, triton_kernel)


@pytest.mark.parametrize("overload,dtype,index_dtype,genome,kernel", CASES)
def test_interaction_kernels_compile_for_sm90(captured, overload, dtype, index_dtype, genome, kernel):
    x = torch.zeros(8, 27, 128, dtype=dtype)
    pairs = (FIRST.to(index_dtype), SECOND.to(index_dtype))
    args = (x, *pairs) if overload == PAIRWISE_DOTS else (torch.zeros(8, 351, dtype=dtype), x, *pairs)
    problem = INTERACTION.problem(overload, args, {})
    impl = INTERACTION.implementation("interaction_triton")
    assert impl.supports(problem, genome) is None
    impl.build(problem, genome)(*args)
    assert_compiled(captured, kernel)
