"""The jagged kernels compile for Hopper (sm_90) without a GPU, with the arguments and constexprs their launcher
passes (captured, as in test_sm90_compile); the padded-to-jagged kernel finds its search steps from the batch
itself (a while loop over a run-time argument: the batch may be symbolic), which must compile too."""
import pytest
import torch

from tests.families.test_sm90_compile import assert_compiled, captured_launches
from torch_kevolve.families.jagged import triton_kernel
from torch_kevolve.families.jagged.calls import JaggedCall


@pytest.mark.parametrize("to_padded", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_jagged_kernels_compile_for_sm90(monkeypatch, to_padded, dtype):
    captured = captured_launches(monkeypatch, triton_kernel)
    offsets = torch.tensor([0, 3, 3, 7])
    call = JaggedCall(to_padded, 3, 5, 7, (16,), 0.0)
    source = torch.zeros((7, 16) if to_padded else (3, 5, 16), dtype=dtype)
    genome = dict(BLOCK_N=32, BLOCK_D=16, num_warps=4, num_stages=2)
    triton_kernel.convert({"source": source, "offsets": offsets}, call, genome)
    assert_compiled(captured, "jagged_to_padded_kernel" if to_padded else "padded_to_jagged_kernel")
