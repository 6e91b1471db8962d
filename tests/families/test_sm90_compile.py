"""Every Triton kernel of the embedding-bag and pointwise families compiles for Hopper (sm_90) without a GPU.

The launches are captured from the real launchers (so arguments and constexprs are exactly what
they pass), then compiled with triton.compile for GPUTarget("cuda", 90, 32).
"""
import pytest
import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from torch_kevolve.families import EMBEDDING_BAG, EMBEDDING_BAG_BACKWARD, POINTWISE
from torch_kevolve.families.embedding_bag import backward_triton, forward_triton
from torch_kevolve.families.pointwise import launcher
from torch_kevolve.families.pointwise.overloads import resolve
from torch_kevolve.families.pointwise.table import OPS

aten = torch.ops.aten
SM90 = GPUTarget("cuda", 90, 32)
POINTER_TYPES = {torch.float32: "*fp32", torch.float16: "*fp16", torch.bfloat16: "*bf16", torch.float64: "*fp64",
                 torch.int32: "*i32", torch.int64: "*i64", torch.int16: "*i16", torch.int8: "*i8", torch.uint8: "*u8",
                 torch.bool: "*i1"}
LAUNCH_OPTIONS = ("num_warps", "num_stages")

FORWARD = [  # (mode, dtype, per_sample_weights, padding_idx, index dtype, genome)
    (0, torch.float32, False, -1, torch.int64, dict(BLOCK_N=32, BLOCK_D=128, BAGS_PER_PROGRAM=1, num_warps=4, num_stages=1)),
    (0, torch.float16, True, -1, torch.int32, dict(BLOCK_N=64, BLOCK_D=256, BAGS_PER_PROGRAM=2, num_warps=8, num_stages=3)),
    (1, torch.bfloat16, False, 0, torch.int64, dict(BLOCK_N=1, BLOCK_D=128, BAGS_PER_PROGRAM=8, num_warps=1, num_stages=2)),
    (2, torch.float32, False, 0, torch.int32, dict(BLOCK_N=16, BLOCK_D=64, BAGS_PER_PROGRAM=4, num_warps=4, num_stages=1)),
    (2, torch.bfloat16, False, -1, torch.int64, dict(BLOCK_N=32, BLOCK_D=32, BAGS_PER_PROGRAM=1, num_warps=2, num_stages=3)),
]
BACKWARD = [  # (mode, dtype, per_sample_weights, padding_idx, index dtype, contiguous grad, genome)
    (0, torch.float32, True, -1, torch.int64, True,
     dict(algorithm="atomic", BLOCK_N=16, BLOCK_D=128, ITEMS_PER_PROGRAM=4, num_warps=4, num_stages=1)),
    (1, torch.bfloat16, False, 0, torch.int32, False,
     dict(algorithm="atomic", BLOCK_N=1, BLOCK_D=64, ITEMS_PER_PROGRAM=1, num_warps=2, num_stages=2)),
    (2, torch.float16, False, 0, torch.int64, True,
     dict(algorithm="atomic", BLOCK_N=32, BLOCK_D=256, ITEMS_PER_PROGRAM=16, num_warps=8, num_stages=3)),
    (0, torch.float32, False, -1, torch.int64, True,
     dict(algorithm="segment", BLOCK_N=16, BLOCK_D=128, ITEMS_PER_PROGRAM=16, num_warps=4, num_stages=1)),
    (1, torch.float16, False, 0, torch.int32, False,
     dict(algorithm="segment", BLOCK_N=64, BLOCK_D=32, ITEMS_PER_PROGRAM=64, num_warps=1, num_stages=3)),
    (0, torch.bfloat16, True, 0, torch.int64, True,
     dict(algorithm="segment", BLOCK_N=32, BLOCK_D=256, ITEMS_PER_PROGRAM=16, num_warps=8, num_stages=2)),
]


def captured_launches(monkeypatch, *modules) -> list:
    """The launches made through each module's `launch`, recorded as (kernel, args, kwargs) instead of run."""
    calls = []

    def record(kernel, grid, *args, **kwargs):
        calls.append((kernel, args, kwargs))

    for module in modules:
        monkeypatch.setattr(module, "launch", record)
    return calls


@pytest.fixture
def captured(monkeypatch):
    """Launches of the Triton launchers, recorded instead of run."""
    return captured_launches(monkeypatch, forward_triton, backward_triton, launcher)


def divisible_by_16(value) -> bool:
    """Whether Triton's JIT would mark the argument 16-divisible: a 16-byte aligned tensor, an integer multiple of 16."""
    if isinstance(value, torch.Tensor):
        return value.data_ptr() % 16 == 0
    return isinstance(value, int) and not isinstance(value, bool) and value % 16 == 0


def compile_for_sm90(kernel, args, kwargs):
    """`kernel` compiled for sm_90 with the launch's arguments, specialized as the JIT would (16-divisibility)."""
    signature, constexprs = {}, {}
    attrs = {(i,): [["tt.divisibility", 16]] for i, value in enumerate(args) if divisible_by_16(value)}
    for name, value in zip(kernel.arg_names, args):
        if value is None:
            signature[name], constexprs[name] = "constexpr", None
        elif isinstance(value, torch.Tensor):
            signature[name] = POINTER_TYPES[value.dtype]
        elif isinstance(value, float):
            signature[name] = "fp32"
        else:
            signature[name] = "i32" if -(2**31) <= value < 2**31 else "i64"
    for name, value in kwargs.items():
        if name not in LAUNCH_OPTIONS:
            signature[name], constexprs[name] = "constexpr", value
    options = {name: kwargs[name] for name in LAUNCH_OPTIONS if name in kwargs}
    return triton.compile(ASTSource(kernel, signature=signature, constexprs=constexprs, attrs=attrs), target=SM90, options=options)


def assert_compiled(captured, *kernel_names):
    assert [kernel.fn.__name__ for kernel, _, _ in captured] == list(kernel_names)
    for launch in captured:
        compiled = compile_for_sm90(*launch)
        assert compiled.asm["cubin"] and ".target sm_90" in compiled.asm["ptx"]


@pytest.mark.parametrize("mode,dtype,psw,padding_idx,index_dtype,genome", FORWARD)
def test_forward_kernel_compiles_for_sm90(captured, mode, dtype, psw, padding_idx, index_dtype, genome):
    weight = torch.zeros(64, 128, dtype=dtype)
    indices, offsets = torch.zeros(96, dtype=index_dtype), torch.arange(0, 96, 3, dtype=index_dtype)
    args = (weight, indices, offsets, False, mode, False, torch.ones(96, dtype=dtype) if psw else None, False, padding_idx)
    problem = EMBEDDING_BAG.problem(aten._embedding_bag.default, args, {})
    EMBEDDING_BAG.implementation("embedding_bag_triton").build(problem, genome)(*args)
    assert_compiled(captured, "embedding_bag_forward_kernel")


@pytest.mark.parametrize("mode,dtype,psw,padding_idx,index_dtype,contiguous,genome", BACKWARD)
def test_backward_kernel_compiles_for_sm90(captured, mode, dtype, psw, padding_idx, index_dtype, contiguous, genome):
    grad = torch.zeros(32, 128, dtype=dtype) if contiguous else torch.zeros(128, 32, dtype=dtype).t()
    indices, offsets = torch.zeros(96, dtype=index_dtype), torch.arange(0, 96, 3, dtype=index_dtype)
    max_indices = torch.zeros((32, 128) if mode == 2 else (32,), dtype=index_dtype)
    args = (grad, indices, offsets, indices, offsets, max_indices, 64, False, mode, False,
            torch.ones(96, dtype=dtype) if psw else None, padding_idx)
    problem = EMBEDDING_BAG_BACKWARD.problem(aten._embedding_bag_backward.default, args, {})
    EMBEDDING_BAG_BACKWARD.implementation("embedding_bag_backward_triton").build(problem, genome)(*args)
    kernels = {"atomic": ("embedding_bag_backward_atomic_kernel",),
               "segment": ("count_rows_kernel", "place_entries_kernel", "zero_untouched_rows_kernel",
                           "reduce_runs_kernel")}
    assert_compiled(captured, *kernels[genome["algorithm"]])


@pytest.mark.parametrize("index,op", list(enumerate(OPS)), ids=[op.name for op in OPS])
def test_pointwise_kernel_compiles_for_sm90(captured, index, op):
    """Each generated kernel, on its first overload's first example (contiguous for even rows of the
    table, strided for odd ones), with the GPU's libdevice math."""
    overload = resolve(op.overloads[0])
    problem = POINTWISE.example_problems(overload)[index % 2]
    args = POINTWISE.make_inputs(problem, 0, "normal", torch.device("cpu"))
    POINTWISE.implementation("pointwise_triton").build(problem, dict(BLOCK=1024, num_warps=4))(*args)
    kernel, launch_args, kwargs = captured[0]
    assert kernel.fn.__name__ == f"{op.name}_kernel" and kwargs["CONTIGUOUS"] == (index % 2 == 0)
    compiled = compile_for_sm90(kernel, launch_args, {**kwargs, "LIBDEVICE": True})
    assert compiled.asm["cubin"] and ".target sm_90" in compiled.asm["ptx"]
