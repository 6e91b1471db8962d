"""Every Triton kernel of the factorization-machine family compiles for Hopper (sm_90) without a GPU, with the
arguments and constexprs its launcher passes (captured, as in test_sm90_compile), at WuKong's sizes and at the
largest tiles the family accepts."""
import pytest
import torch

from tests.families.test_sm90_compile import assert_compiled, captured_launches
from torch_kevolve.families import FM_INTERACTION
from torch_kevolve.families.fm_interaction import triton_kernel
from torch_kevolve.families.fm_interaction.calls import FM_INTERACTION as FORWARD
from torch_kevolve.families.fm_interaction.calls import FM_INTERACTION_BACKWARD as BACKWARD

CASES = [  # (overload, dtype, rows, dim, k, shared, genome)
    (FORWARD, torch.float32, 32, 128, 16, True, dict(algorithm="project", BLOCK_D=64, num_warps=4, num_stages=1)),
    (FORWARD, torch.bfloat16, 27, 256, 32, False, dict(algorithm="project", BLOCK_D=128, num_warps=8, num_stages=3)),
    (FORWARD, torch.float16, 64, 64, 8, True, dict(algorithm="gram", BLOCK_D=32, num_warps=2, num_stages=2)),
    (FORWARD, torch.bfloat16, 128, 256, 64, True, dict(algorithm="gram", BLOCK_D=128, num_warps=8, num_stages=1)),
    (BACKWARD, torch.float32, 32, 128, 16, True, dict(algorithm="project", BLOCK_D=64, num_warps=4, num_stages=1)),
    (BACKWARD, torch.bfloat16, 16, 256, 32, False, dict(algorithm="project", BLOCK_D=256, num_warps=8, num_stages=2)),
    (BACKWARD, torch.float16, 64, 128, 8, False, dict(algorithm="gram", BLOCK_D=64, num_warps=4, num_stages=3)),
    (BACKWARD, torch.bfloat16, 128, 256, 64, True, dict(algorithm="gram", BLOCK_D=128, num_warps=8, num_stages=1)),
]
KERNELS = {FORWARD: "fm_forward_kernel", BACKWARD: "fm_backward_kernel"}


@pytest.fixture
def captured(monkeypatch):
    return captured_launches(monkeypatch, triton_kernel)


@pytest.mark.parametrize("overload,dtype,rows,dim,k,shared,genome", CASES)
def test_fm_interaction_kernels_compile_for_sm90(captured, overload, dtype, rows, dim, k, shared, genome):
    x = torch.zeros(8, rows, dim, dtype=dtype)
    y = torch.zeros((rows, k) if shared else (8, rows, k), dtype=dtype)
    args = (x, y) if overload == FORWARD else (torch.zeros(8, rows, k, dtype=dtype), x, y)
    problem = FM_INTERACTION.problem(overload, args, {})
    impl = FM_INTERACTION.implementation("fm_interaction_triton")
    assert impl.supports(problem, genome) is None
    impl.build(problem, genome)(*args)
    assert_compiled(captured, KERNELS[overload])
