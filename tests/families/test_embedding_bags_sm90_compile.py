"""The batched embedding-bag kernels compile for Hopper (sm_90) without a GPU: the generated one-launch
forward for DLRM's 26 tables (and 2), and the backward's kernels (segment, rows, sweep, runs and fill-runs), with the arguments
and constexprs their launchers pass (captured, as in test_sm90_compile)."""
import pytest
import torch

from tests.families.test_sm90_compile import assert_compiled, captured_launches
from torch_kevolve.families import EMBEDDING_BAGS, EMBEDDING_BAGS_BACKWARD
from torch_kevolve.families.embedding_bag import backward_triton, row_sort, rows_backward
from torch_kevolve.families.embedding_bags import backward_fill_runs, backward_runs, backward_sweep, forward_triton
from torch_kevolve.families.embedding_bags.calls import BACKWARD, FORWARD

FORWARD_GENOME = dict(BLOCK_N=32, BLOCK_D=128, BAGS_PER_PROGRAM=2, num_warps=2, num_stages=1)
BACKWARD_GENOME = dict(algorithm="segment", BLOCK_N=8, BLOCK_D=128, ITEMS_PER_PROGRAM=4, num_warps=1, num_stages=1)
BACKWARDS = {  # implementation -> (genome, the kernels it launches)
    "embedding_bags_backward_triton": (BACKWARD_GENOME, ("count_rows_kernel", "place_entries_kernel",
                                                         "zero_untouched_rows_kernel", "reduce_runs_kernel")),
    "embedding_bags_backward_rows": (dict(ROWS=16, BLOCK_D=128, num_warps=4, num_stages=1),
                                     ("count_rows_kernel", "place_entries_kernel", "gather_rows_kernel")),
    "embedding_bags_backward_sweep": (dict(ROWS=16, UNROLL=4, BLOCK_D=128, num_warps=4, num_stages=1),
                                      ("count_slots_kernel", "place_slots_kernel", "sweep_rows_kernel")),
    "embedding_bags_backward_runs": (dict(BLOCK_N=8, BLOCK_D=128, ITEMS_PER_PROGRAM=4, num_warps=1, num_stages=1),
                                     ("count_slots_kernel", "place_slots_kernel", "zero_untouched_rows_kernel",
                                      "reduce_runs_kernel")),
    "embedding_bags_backward_fill_runs": (dict(BLOCK_N=8, BLOCK_D=128, ITEMS_PER_PROGRAM=4, num_warps=1, num_stages=1),
                                          ("count_slots_kernel", "place_slots_kernel", "fill_runs_kernel",
                                           "zero_listed_gaps_kernel")),
}
CASES = [(26, 0, torch.float32, torch.int64), (2, 1, torch.bfloat16, torch.int32), (3, 0, torch.float16, torch.int64)]


@pytest.fixture
def captured(monkeypatch):
    return captured_launches(monkeypatch, forward_triton, backward_triton, row_sort, rows_backward, backward_sweep,
                             backward_runs, backward_fill_runs)


def bags(tables, index_dtype):
    return ([torch.zeros(96, dtype=index_dtype) for _ in range(tables)],
            [torch.arange(0, 96, 3, dtype=index_dtype) for _ in range(tables)])


@pytest.mark.parametrize("tables,mode,dtype,index_dtype", CASES)
def test_forward_kernel_compiles_for_sm90(captured, tables, mode, dtype, index_dtype):
    indices, offsets = bags(tables, index_dtype)
    args = ([torch.zeros(64 + t, 128, dtype=dtype) for t in range(tables)], indices, offsets, mode, False)
    problem = EMBEDDING_BAGS.problem(FORWARD, args, {})
    EMBEDDING_BAGS.implementation("embedding_bags_triton").build(problem, FORWARD_GENOME)(*args)
    assert_compiled(captured, "embedding_bags_forward_kernel")


@pytest.mark.parametrize("implementation", sorted(BACKWARDS))
@pytest.mark.parametrize("tables,mode,dtype,index_dtype", CASES)
def test_stacked_backward_kernels_compile_for_sm90(captured, tables, mode, dtype, index_dtype, implementation):
    indices, offsets = bags(tables, index_dtype)
    args = ([torch.zeros(32, 128, dtype=dtype) for _ in range(tables)], indices, offsets,
            [64 + t for t in range(tables)], mode, False)
    problem = EMBEDDING_BAGS_BACKWARD.problem(BACKWARD, args, {})
    genome, kernels = BACKWARDS[implementation]
    EMBEDDING_BAGS_BACKWARD.implementation(implementation).build(problem, genome)(*args)
    assert_compiled(captured, *kernels)


class Hopper:
    """A stand-in for Triton's active driver: only the target it reports (sm_90) is asked for."""

    def get_current_target(self):
        from triton.backends.compiler import GPUTarget

        return GPUTarget("cuda", 90, 32)


def test_inductor_sees_the_forward_write_only_its_output(monkeypatch):
    """Inductor's analysis of user Triton kernels (from their TTIR) must find the 26 weight pointers, chosen
    by selects, read only; were it to give up, Inductor would copy every table before each launch."""
    from triton.runtime import driver
    wrap = pytest.importorskip("torch._higher_order_ops.triton_kernel_wrap")
    if not hasattr(wrap, "identify_accessed_tensors"):
        pytest.skip("this torch analyses user kernels under another name")
    kernel = forward_triton.kernel(26)
    args = [torch.zeros(96, dtype=torch.int64) if name.startswith(("indices", "offsets")) else
            torch.zeros(64, 128) if name.startswith("weight") else 96 if name.startswith("num_indices") else
            32 if name.startswith("num_bags") else 0 for name in kernel.arg_names[:-6]]
    kwargs = dict(zip(kernel.arg_names, args + [torch.zeros(26 * 32, 128), 128]),
                  MODE=0, BLOCK_N=32, BLOCK_D=128, BAGS_PER_PROGRAM=1)
    monkeypatch.setattr(driver, "_active", Hopper())
    accesses = wrap.identify_accessed_tensors(kernel, kwargs, {})
    assert {dep.name for dep in accesses.read_writes.writes} == {"out_ptr"}
    assert {dep.name for dep in accesses.read_writes.reads} == {f"{n}{t}" for t in range(26)
                                                                for n in ("weight", "indices", "offsets")}


def sweep_kernel_arguments(kernel, tables: int) -> dict:
    """Arguments by name for one of backward_sweep's generated kernels: per-table tensors and sizes, then the
    shared buffers."""
    per_table = {"indices": torch.zeros(96, dtype=torch.int64), "offsets": torch.arange(0, 96, 3),
                 "grad": torch.zeros(32, 128), "num_indices": 96, "num_bags": 32, "row_base": 0, "bag_base": 0,
                 "stride_gb": 128, "stride_gd": 1, "num_rows": 64}
    shared = {"counts_ptr": torch.zeros(64 * tables, dtype=torch.int32), "ends_ptr": torch.zeros(64 * tables, dtype=torch.int32),
              "firsts_ptr": torch.zeros(64 * tables, dtype=torch.int32),
              "slot_bags_ptr": torch.zeros(96 * tables, dtype=torch.int32),
              "slot_keys_ptr": torch.zeros(96 * tables, dtype=torch.int64), "slot_scale_ptr": torch.zeros(1),
              "out_ptr": torch.zeros(64 * tables, 128), "dim": 128, "bag_stride": 27}
    return {name: per_table[name.rstrip("0123456789")] if name.rstrip("0123456789") in per_table else shared[name]
            for name in kernel.arg_names if name in shared or name.rstrip("0123456789") in per_table}


@pytest.mark.parametrize("kernel_name,constexprs,reads,writes", [
    ("count_slots_kernel", dict(BAGS=32, BLOCK_N=32), ("indices", "offsets"), {"counts_ptr"}),
    ("place_slots_kernel", dict(SLOT_KEYS=0, MODE=1, BAGS=32, BLOCK_N=32), ("indices", "offsets"),
     {"ends_ptr", "slot_bags_ptr", "slot_scale_ptr"}),
    ("place_slots_kernel", dict(SLOT_KEYS=1, MODE=0, BAGS=32, BLOCK_N=32), ("indices", "offsets"),
     {"ends_ptr", "slot_keys_ptr"}),
    ("sweep_rows_kernel", dict(MODE=1, ROWS=16, UNROLL=4, BLOCK_D=128), ("grad",), {"out_ptr"}),
])
def test_inductor_sees_the_sweep_kernels_read_every_table_and_write_only_their_buffers(
        monkeypatch, kernel_name, constexprs, reads, writes):
    """The 26 tables' grads, indices and offsets, chosen by selects, are found read only, so Inductor neither
    copies them nor orders the launches wrongly."""
    from triton.runtime import driver
    wrap = pytest.importorskip("torch._higher_order_ops.triton_kernel_wrap")
    if not hasattr(wrap, "identify_accessed_tensors"):
        pytest.skip("this torch analyses user kernels under another name")
    kernel = getattr(backward_sweep.kernels(26), kernel_name)
    monkeypatch.setattr(driver, "_active", Hopper())
    accesses = wrap.identify_accessed_tensors(kernel, {**sweep_kernel_arguments(kernel, 26), **constexprs}, {})
    assert {dep.name for dep in accesses.read_writes.writes} == writes
    assert {f"{n}{t}" for t in range(26) for n in reads} <= {dep.name for dep in accesses.read_writes.reads}


FILL_RUNS_ARGUMENTS = dict(grad_ptr=torch.zeros(32, 128), keys_ptr=torch.zeros(96, dtype=torch.int64),
                           scale_ptr=torch.zeros(96), out_ptr=torch.zeros(64, 128), gap_count_ptr=torch.zeros(1, dtype=torch.int32),
                           gap_bounds_ptr=torch.zeros(4, dtype=torch.int64), num_slots=96, num_rows=64, dim=128,
                           stride_gb=128, stride_gd=1)


@pytest.mark.parametrize("kernel_name,constexprs,reads,writes", [
    ("fill_runs_kernel", dict(SCALED=0, BLOCK_N=8, BLOCK_D=128, SLOTS=4, GAP_ROWS=4, GAP_LIMIT=64),
     {"grad_ptr", "keys_ptr"}, {"out_ptr", "gap_count_ptr", "gap_bounds_ptr"}),
    ("fill_runs_kernel", dict(SCALED=1, BLOCK_N=8, BLOCK_D=128, SLOTS=4, GAP_ROWS=4, GAP_LIMIT=64),
     {"grad_ptr", "keys_ptr", "scale_ptr"}, {"out_ptr", "gap_count_ptr", "gap_bounds_ptr"}),
    ("zero_listed_gaps_kernel", dict(ROWS=16, BLOCK_D=128), {"gap_count_ptr", "gap_bounds_ptr"}, {"out_ptr"}),
])
def test_inductor_sees_what_the_fill_runs_kernels_read_and_write(monkeypatch, kernel_name, constexprs, reads, writes):
    """Through the helpers fill_runs_kernel calls too: the gradient and the keys (and the scales, when mean mode reads
    them) are found read only, so Inductor neither copies them nor orders the launches wrongly."""
    from triton.runtime import driver
    wrap = pytest.importorskip("torch._higher_order_ops.triton_kernel_wrap")
    if not hasattr(wrap, "identify_accessed_tensors"):
        pytest.skip("this torch analyses user kernels under another name")
    kernel = getattr(backward_fill_runs, kernel_name)
    monkeypatch.setattr(driver, "_active", Hopper())
    arguments = {name: FILL_RUNS_ARGUMENTS[name] for name in kernel.arg_names if name in FILL_RUNS_ARGUMENTS}
    accesses = wrap.identify_accessed_tensors(kernel, {**arguments, **constexprs}, {})
    assert {dep.name for dep in accesses.read_writes.writes} == writes
    assert {dep.name for dep in accesses.read_writes.reads} == reads
