"""A small MLP (nn.Linear, ReLU, nn.Linear: DLRM's bottom MLP with K = 13) trained one step under
backend="kevolve": its addmm (forward), its linear+ReLU (the first layer's addmm and ReLU, one epilogue pattern)
and mm (backward) nodes are gemm problems; with an empty cache Inductor keeps them, in interpret mode our GEMM
kernels run them; loss and gradients match eager either way. Inductor's GPU spelling of the layer (mm, add,
ReLU) is fused by the pass too, where the fused call's winner beats the winner of the mm alone."""
import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx

import torch_kevolve.warm as warm_module
from tests.backend.test_interaction_end_to_end import assert_matches_eager, train_step
from torch_kevolve.backend import KevolveOptions, make_dispatcher
from torch_kevolve.backend.decisions import collect_decisions
from torch_kevolve.backend.graph_pass import KevolvePass
from torch_kevolve.cache import UserStore
from torch_kevolve.cache.record import KernelRecord
from torch_kevolve.families import GEMM
from torch_kevolve.families.gemm.implementations import PRESPLIT, TRITON
from torch_kevolve.families.gemm.relu_calls import ADDMM_RELU as ADDMM_RELU_OP
from torch_kevolve.key import DeviceInfo, OpKey

ADDMM, MM, ADDMM_RELU = "aten.addmm.default", "aten.mm.default", "kevolve.addmm_relu.default"
aten = torch.ops.aten


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(13, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

    def forward(self, dense: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.layers(dense).squeeze(1), target)


def mlp(device):
    """The MLP and a batch of 6 samples."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    return MLP().to(device), (torch.randn(6, 13, generator=g).to(device), torch.randn(6, generator=g).to(device))


def test_empty_cache_leaves_the_gemms_to_inductor(tmp_path):
    want, got, model, twin, decisions = train_step({"shipped_cache": False}, tmp_path, mlp)
    assert_matches_eager(want, got, model, twin)
    ours = [d for d in decisions if d.family == "gemm"]
    assert {d.op for d in ours} == {ADDMM, MM, ADDMM_RELU} and not any(d.claimed for d in ours)
    assert all(d.problem is not None for d in ours)
    assert sum(d.op == ADDMM for d in ours) == 2  # the unclaimed linear+ReLU leaves its addmm to the gemm visit


def test_interpret_mode_runs_our_gemm_kernel(tmp_path):
    want, got, model, twin, decisions = train_step({"interpret": True, "families": ["gemm"]}, tmp_path, mlp)
    assert_matches_eager(want, got, model, twin)
    claimed = {(d.graph, d.op): d.implementation for d in decisions if d.claimed}
    assert claimed == {("forward", ADDMM_RELU): "gemm_tf32x3_presplit", ("forward", ADDMM): "gemm_triton",
                       ("backward", MM): "gemm_triton"}
    assert sum(d.op == ADDMM for d in decisions) == 1  # the first layer's addmm went into the fused call
    assert not [d for d in decisions if d.family == "gemm" and not d.claimed]


def test_warm_sees_the_linear_layers(tmp_path):
    model, inputs = mlp("cpu")
    problems = warm_module.model_problems(model, inputs, {"cache_dir": str(tmp_path), "families": ["gemm"]})
    first = next(p for _, p in problems.values() if p.op == ADDMM and p.dim("K") == 13)
    assert (first.dim("M"), first.dim("N")) == (6, 16)
    assert first.param("b_layout") == "column" and first.param("bias") == "row"
    fused = next(p for _, p in problems.values() if p.op == ADDMM_RELU)
    assert fused.dims == first.dims and fused.params == first.params


def _gpu_spelled_layer():
    """Inductor's post-grad graph of a linear layer and its ReLU on GPUs (mm, add, relu), traced on fake tensors."""
    with FakeTensorMode():
        return make_fx(lambda bias, a, b: aten.relu(aten.add(aten.mm(a, b), bias)))(
            torch.empty(16), torch.empty(8, 12), torch.empty(16, 12).t())


def _run_pass(gm, tmp_path, **options):
    options = KevolveOptions.from_user({"cache_dir": str(tmp_path), "families": ["gemm"], **options})
    with collect_decisions() as decisions:
        KevolvePass(options, make_dispatcher(options))(gm.graph)
    gm.recompile()
    return decisions


def test_the_gpu_spelling_runs_as_one_kernel(tmp_path):
    gm = _gpu_spelled_layer()
    decisions = _run_pass(gm, tmp_path, interpret=True)
    targets = {n.target for n in gm.graph.nodes if n.op == "call_function"}
    assert not targets & {aten.mm.default, aten.add.Tensor, aten.relu.default}
    assert [(d.op, d.claimed, d.implementation) for d in decisions] == [(ADDMM_RELU, True, "gemm_tf32x3_presplit")]
    g = torch.Generator().manual_seed(0)
    bias, a, b = torch.randn(16, generator=g), torch.randn(8, 12, generator=g), torch.randn(16, 12, generator=g).t()
    torch.testing.assert_close(gm(bias, a, b), torch.relu(a @ b + bias), rtol=1e-5, atol=1e-5)


def test_without_patterns_the_layer_stays_three_nodes(tmp_path):
    gm = _gpu_spelled_layer()
    decisions = _run_pass(gm, tmp_path, patterns=False)
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert targets == [aten.mm.default, aten.add.Tensor, aten.relu.default]
    assert ADDMM_RELU not in {d.op for d in decisions}


H200 = DeviceInfo("cuda", "NVIDIA H200", "sm_90")


def _fused_against_product(tmp_path, monkeypatch, fused_fitness, product_fitness):
    """The pass on Inductor's GPU graph of the layer (fake CUDA tensors, no GPU) with cached winners for the fused
    call and for its mm alone, of the given fitnesses: (claimed ops and implementations, decisions)."""
    original = DeviceInfo.of
    monkeypatch.setattr(DeviceInfo, "of", staticmethod(
        lambda device: H200 if torch.device(device).type == "cuda" else original(device)))
    bias, a, b = torch.empty(16), torch.empty(8, 12), torch.empty(16, 12).t()
    store = UserStore(tmp_path)
    for overload, args, impl, fitness in ((ADDMM_RELU_OP, (bias, a, b), PRESPLIT, fused_fitness),
                                          (aten.mm.default, (a, b), TRITON, product_fitness)):
        problem = GEMM.problem(overload, args, {})
        store.put(KernelRecord.measured(key=OpKey.of(problem, H200), family=GEMM, implementation=impl,
                                        genome=impl.default_genome(problem), t_ref_us=10.0 * fitness, t_cand_us=10.0,
                                        achieved_gbps=None, stats={"method": "test"}))
    with FakeTensorMode():
        gm = make_fx(lambda bias, a, b: aten.relu(aten.add(aten.mm(a, b), bias)))(
            torch.empty(16, device="cuda"), torch.empty(8, 12, device="cuda"), torch.empty(16, 12, device="cuda").t())
    decisions = _run_pass(gm, tmp_path, shipped_cache=False)
    return {(d.op, d.implementation) for d in decisions if d.claimed}, decisions


def test_the_fused_call_must_beat_the_products_own_winner(tmp_path, monkeypatch):
    claimed, decisions = _fused_against_product(tmp_path, monkeypatch, fused_fitness=1.2, product_fitness=1.5)
    assert claimed == {(MM, "gemm_triton")}
    (fused,) = [d for d in decisions if d.op == ADDMM_RELU]
    assert not fused.claimed and "parts' own kernels are faster" in fused.reason


def test_a_faster_fused_call_replaces_the_layer(tmp_path, monkeypatch):
    claimed, decisions = _fused_against_product(tmp_path, monkeypatch, fused_fitness=1.6, product_fitness=1.5)
    assert claimed == {(ADDMM_RELU, "gemm_tf32x3_presplit")} and MM not in {d.op for d in decisions}
