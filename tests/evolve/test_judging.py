"""Pieces of judging that need no worker: output layouts, poison detection, error classification
(with the planted kernels compiled for sm_90, as they will be on the GPU)."""
import pytest
import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from tests.evolve.planted_kernels import FAR_AWAY, row_sum_kernel, spin_kernel
from torch_kevolve.evolve import poison
from torch_kevolve.evolve.evaluation import Status
from torch_kevolve.evolve.judging import Layout, classify, trial_plan

SM90 = GPUTarget("cuda", 90, 32)
ROW_SUM = {"x_ptr": "*fp32", "out_ptr": "*fp32", "cols": "i32"}


def compile_for_sm90(kernel, signature, constexprs):
    signature = {**signature, **{name: "constexpr" for name in constexprs}}
    return triton.compile(ASTSource(kernel, signature=signature, constexprs=constexprs), target=SM90)


def test_layout_differences_are_named():
    layout = Layout.of(torch.empty(4, 3))
    assert layout.differs(torch.empty(4, 3)) == ""
    assert "shape" in layout.differs(torch.empty(3, 4))
    assert "dtype" in layout.differs(torch.empty(4, 3, dtype=torch.float64))
    assert "strides" in layout.differs(torch.empty(3, 4).t())
    assert Layout.of(torch.empty(4, 1)).differs(torch.empty(1, 4).t()) == ""  # length-1 dims have no stride


def test_only_untouched_poison_counts_as_unwritten():
    t = torch.full((2, 6), poison.POISON_BYTE, dtype=torch.uint8).view(torch.float16)[:, :1].clone()
    t[0] = 1.0
    t.view(torch.uint8)[1, 0] = 0  # one byte written is a write
    assert poison.poisoned(t).tolist() == [[False], [False]]
    t[1] = t[1].view(torch.uint8).fill_(poison.POISON_BYTE).view(torch.float16)
    assert poison.poisoned(t).tolist() == [[False], [True]]
    assert poison.poisoned(torch.zeros(0, 5)).shape == (0, 5)


def test_trials_cycle_through_the_distributions():
    assert trial_plan(6) == [(0, "normal"), (0, "uniform"), (0, "large"), (0, "edge"), (1, "normal"), (1, "uniform")]


@pytest.mark.parametrize("flags", [dict(BIAS=1.0), dict(NAN_FIRST_ROW=True), dict(SCRATCH_IN_INPUT=True),
                                   dict(OFFSET=FAR_AWAY)])
def test_planted_kernels_compile_for_sm90(flags):
    constexprs = {"BLOCK": 32, "BIAS": 0.0, "NAN_FIRST_ROW": False, "SCRATCH_IN_INPUT": False, "OFFSET": 0, **flags}
    assert ".target sm_90" in compile_for_sm90(row_sum_kernel, ROW_SUM, constexprs).asm["ptx"]
    assert compile_for_sm90(spin_kernel, {"out_ptr": "*fp32", "n": "i32"}, {}).asm["cubin"]


def test_compile_errors_are_told_from_run_errors():
    constexprs = {"BLOCK": 8, "BIAS": 0.0, "NAN_FIRST_ROW": False, "SCRATCH_IN_INPUT": False, "OFFSET": 0}
    with pytest.raises(Exception) as failure:
        compile_for_sm90(row_sum_kernel, ROW_SUM, constexprs)
    assert classify(failure.value) is Status.COMPILE_ERROR
    try:
        raise RuntimeError("wrapped") from RuntimeError("CUDA error: an illegal memory access was encountered")
    except RuntimeError as e:
        assert classify(e) is Status.CRASH
    assert classify(ValueError("bad genome")) is Status.ERROR


def test_fitness_uses_the_reference_timed_beside_the_candidate():
    """A load spike while the problem was prepared (its reference time) must not inflate the fitness."""
    import dataclasses

    from tests.evolve.planted import PLANTED, row_sum_problem
    from torch_kevolve.evolve.judging import Bench, judge

    bench = Bench.prepare(PLANTED, row_sum_problem(64, 256), torch.device("cpu"), trials=3)
    spiked = dataclasses.replace(bench, t_ref_us=bench.t_ref_us * 1000)
    result = judge(spiked, PLANTED.implementation("row_sum_decomposition"), {}, suspect_below=0.0)
    assert result.status is Status.OK
    assert result.t_ref_us < spiked.t_ref_us / 10 and result.fitness == pytest.approx(result.t_ref_us / result.t_cand_us)


def _judged_gemm(scale: float):
    """judge's verdict on a 'kernel' computing mm exactly (float64, rounded once) times `scale`, for a GEMM
    problem whose K is long enough that compare's worst-case tolerance admits a scale error of 1e-5."""
    from torch_kevolve.evolve.judging import Bench, judge
    from torch_kevolve.families import GEMM
    from torch_kevolve.families.base import Abstraction, GenomeSpace, Implementation
    from torch_kevolve.families.gemm.calls import MM

    def build(problem, genome):
        return lambda a, b: (a.double() @ b.double() * scale).float()

    exact = Implementation("exact_mm", Abstraction.DECOMPOSITION, GenomeSpace(()), build, lambda p, g: None,
                           (__name__,))
    problem = GEMM.problem(MM, (torch.empty(48, 256), torch.empty(256, 40)), {})
    return judge(Bench.prepare(GEMM, problem, torch.device("cpu"), trials=2), exact, {}, suspect_below=0.0)


def test_a_biased_gemm_within_the_worst_case_tolerance_is_wrong():
    """A GEMM whose error is biased (as a sum chained through tensor cores that drop low bits, 1.1e-5 at K = 4096
    on the H200) passes compare's worst-case tolerance but not the family's error_vs_reference; one a little
    inside the allowance (4 x 1.3e-6 of the largest output) passes."""
    assert _judged_gemm(1.0).status is Status.OK
    assert _judged_gemm(1 + 4e-6).status is Status.OK
    biased = _judged_gemm(1 + 1e-5)
    assert biased.status is Status.WRONG and "times the torch.compile'd reference's own" in biased.error
