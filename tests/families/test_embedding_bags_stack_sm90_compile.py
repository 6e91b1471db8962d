"""The kevolve::embedding_bags_stack kernels compile for Hopper (sm_90) without a GPU: stack_forward's generated
kernel (DLRM's one head and 26 fp32 tables with int64 indices; no head and 2 bf16 tables with int32 indices) and the
kernels of stack_backward's runs and fill-runs algorithms (backward_sweep's count and place, backward_triton's zero
fill and run pass, backward_fill_runs' passes), with the arguments and constexprs their launchers pass through the LAYOUT_FORMS callables (captured, as in
test_sm90_compile); and Inductor's analysis of user Triton kernels finds the stack kernel writing only its output and
reading the head, weights, indices and offsets of every table."""
import pytest
import torch

from tests.families.test_embedding_bags_sm90_compile import Hopper
from tests.families.test_sm90_compile import assert_compiled, captured_launches
from torch_kevolve.families import EMBEDDING_BAGS, EMBEDDING_BAGS_BACKWARD, LAYOUT_FORMS
from torch_kevolve.families.embedding_bags import backward_fill_runs, backward_sweep, stack_backward, stack_forward
from torch_kevolve.families.embedding_bags.calls import BACKWARD, FORWARD

STACK = torch.ops.kevolve.embedding_bags_stack.default
STACK_BACKWARD = torch.ops.kevolve.embedding_bags_stack_backward.default
FORWARD_GENOMES = [dict(BLOCK_N=32, BLOCK_D=128, BAGS_PER_PROGRAM=1, num_warps=2, num_stages=1),
                   dict(BLOCK_N=8, BLOCK_D=64, BAGS_PER_PROGRAM=1, num_warps=4, num_stages=2)]
RUNS_GENOME = dict(BLOCK_N=8, BLOCK_D=128, ITEMS_PER_PROGRAM=4, num_warps=1, num_stages=1)
CASES = [  # (heads, tables, mode, dtype, index dtype)
    (1, 26, 0, torch.float32, torch.int64),
    (0, 2, 1, torch.bfloat16, torch.int32),
]
SAMPLES, DIM = 32, 128


@pytest.fixture
def captured(monkeypatch):
    return captured_launches(monkeypatch, stack_forward, stack_backward, backward_sweep, backward_fill_runs)


def bags(tables, index_dtype):
    return ([torch.zeros(96, dtype=index_dtype) for _ in range(tables)],
            [torch.arange(0, 96, 3, dtype=index_dtype) for _ in range(tables)])


@pytest.mark.parametrize("genome", FORWARD_GENOMES)
@pytest.mark.parametrize("heads,tables,mode,dtype,index_dtype", CASES)
def test_stack_forward_kernel_compiles_for_sm90(captured, heads, tables, mode, dtype, index_dtype, genome):
    indices, offsets = bags(tables, index_dtype)
    weights = [torch.zeros(64 + t, DIM, dtype=dtype) for t in range(tables)]
    head_rows = [torch.zeros(DIM, SAMPLES, dtype=dtype).t() for _ in range(heads)]  # strided, as a transpose
    problem = EMBEDDING_BAGS.problem(FORWARD, (weights, indices, offsets, mode, False), {})
    fn = LAYOUT_FORMS[(STACK, "embedding_bags_triton")].build(problem, genome)
    out = fn(head_rows, weights, indices, offsets, mode, False)
    assert out.shape == (SAMPLES, heads + tables, DIM)
    assert_compiled(captured, "embedding_bags_stack_kernel")
    kernel, args, kwargs = captured[0]
    assert kernel is stack_forward.kernel(heads, tables)
    assert len(args) == 3 * heads + 5 * tables + 2 and args[-1] == DIM
    assert kwargs["MODE"] == mode and kwargs["BLOCK_D"] == genome["BLOCK_D"]


BACKWARD_FORMS = {  # implementation -> (the kernels its form launches, which of them reads the gradient)
    "embedding_bags_backward_runs": (("count_slots_kernel", "place_slots_kernel", "zero_untouched_rows_kernel",
                                      "reduce_runs_kernel"), "reduce_runs_kernel"),
    "embedding_bags_backward_fill_runs": (("count_slots_kernel", "place_slots_kernel", "fill_runs_kernel",
                                           "zero_listed_gaps_kernel"), "fill_runs_kernel"),
}


@pytest.mark.parametrize("implementation", sorted(BACKWARD_FORMS))
@pytest.mark.parametrize("heads,tables,mode,dtype,index_dtype", CASES)
@pytest.mark.parametrize("layout", ["contiguous", "permuted"])
def test_stack_backward_kernels_compile_for_sm90(captured, heads, tables, mode, dtype, index_dtype, layout,
                                                 implementation):
    """Contiguous, and read in place through a dim stride (a [dim, samples, rows] tensor permuted)."""
    indices, offsets = bags(tables, index_dtype)
    rows = heads + tables
    grad = (torch.zeros(SAMPLES, rows, DIM, dtype=dtype) if layout == "contiguous" else
            torch.zeros(DIM, SAMPLES, rows, dtype=dtype).permute(1, 2, 0))
    num_weights = [64 + t for t in range(tables)]
    inner = ([grad[:, heads + t] for t in range(tables)], indices, offsets, num_weights, mode, False)
    problem = EMBEDDING_BAGS_BACKWARD.problem(BACKWARD, inner, {})
    fn = LAYOUT_FORMS[(STACK_BACKWARD, implementation)].build(problem, RUNS_GENOME)
    fn(grad, heads, indices, offsets, num_weights, mode, False)
    kernels, reader = BACKWARD_FORMS[implementation]
    assert_compiled(captured, *kernels)
    [args] = [args for kernel, args, _ in captured if kernel.fn.__name__ == reader]
    assert args[0] is grad and args[-2:] == (grad.stride(1), grad.stride(2))  # the stack gradient itself, in place


def test_inductor_sees_the_stack_kernel_write_only_its_output(monkeypatch):
    """The head and the 26 tables' weights, indices and offsets, chosen by selects, are found read only and the
    stack written: were the analysis to give up, Inductor would copy every table before each launch."""
    from triton.runtime import driver
    wrap = pytest.importorskip("torch._higher_order_ops.triton_kernel_wrap")
    if not hasattr(wrap, "identify_accessed_tensors"):
        pytest.skip("this torch analyses user kernels under another name")
    heads, tables = 1, 26
    kernel = stack_forward.kernel(heads, tables)
    values = {"head": torch.zeros(DIM, SAMPLES), "head_stride_s": 1, "head_stride_d": SAMPLES,
              "weight": torch.zeros(64, DIM), "indices": torch.zeros(96, dtype=torch.int64),
              "offsets": torch.arange(0, 96, 3), "num_indices": 96, "num_bags": SAMPLES}
    kwargs = {name: values[name.rstrip("0123456789")] for name in kernel.arg_names
              if name.rstrip("0123456789") in values}
    assert len(kwargs) == 3 * heads + 5 * tables
    kwargs.update(out_ptr=torch.zeros(SAMPLES, heads + tables, DIM), dim=DIM, MODE=1, BLOCK_N=32, BLOCK_D=128)
    monkeypatch.setattr(driver, "_active", Hopper())
    accesses = wrap.identify_accessed_tensors(kernel, kwargs, {})
    assert {dep.name for dep in accesses.read_writes.writes} == {"out_ptr"}
    assert {dep.name for dep in accesses.read_writes.reads} == {"head0"} | {
        f"{n}{t}" for t in range(tables) for n in ("weight", "indices", "offsets")}
