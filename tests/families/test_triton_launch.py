"""Interpreted launches on CPU tensors leave triton.language as they found it (GPU compiles still work)."""
import torch
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from torch_kevolve.families.triton_launch import launch


@triton.jit
def _scaled_sum_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=0.0)
    tl.store(out_ptr + tl.program_id(0), tl.sum(tl.zeros([BLOCK], dtype=tl.float32) + x * 2, axis=0))


def test_cpu_launch_runs_interpreted_and_restores_triton_language():
    namespaces = (tl, tl.core, tl.math, tl.core.tensor)
    before = [dict(vars(ns)) for ns in namespaces]
    x, out = torch.arange(5, dtype=torch.float32), torch.zeros(2)
    launch(_scaled_sum_kernel, (2,), x, out, 5, BLOCK=8)
    assert out.tolist() == [20.0, 20.0]
    assert [dict(vars(ns)) for ns in namespaces] == before
    source = ASTSource(_scaled_sum_kernel, signature={"x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32", "BLOCK": "constexpr"},
                       constexprs={"BLOCK": 8})
    assert triton.compile(source, target=GPUTarget("cuda", 90, 32)).asm["cubin"]


def test_empty_grid_launches_nothing():
    out = torch.zeros(1)
    launch(_scaled_sum_kernel, (0,), out, out, 1, BLOCK=8)
    assert out.tolist() == [0.0]
