"""A small MLP (nn.Linear, ReLU, nn.Linear: DLRM's bottom MLP with K = 13) trained one step under
backend="kevolve": its addmm (forward) and mm (backward) nodes are gemm problems; with an empty cache Inductor
keeps them, in interpret mode our GEMM kernel runs them; loss and gradients match eager either way."""
import torch
import torch.nn.functional as F

import torch_kevolve.warm as warm_module
from tests.backend.test_interaction_end_to_end import assert_matches_eager, train_step

ADDMM, MM = "aten.addmm.default", "aten.mm.default"


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
    assert {d.op for d in ours} >= {ADDMM, MM} and not any(d.claimed for d in ours)
    assert all(d.problem is not None for d in ours)


def test_interpret_mode_runs_our_gemm_kernel(tmp_path):
    want, got, model, twin, decisions = train_step({"interpret": True, "families": ["gemm"]}, tmp_path, mlp)
    assert_matches_eager(want, got, model, twin)
    claimed = {(d.graph, d.op) for d in decisions if d.claimed}
    assert ("forward", ADDMM) in claimed and ("backward", MM) in claimed
    assert all(d.implementation == "gemm_triton" for d in decisions if d.claimed)
    assert not [d for d in decisions if d.family == "gemm" and not d.claimed]


def test_warm_sees_the_linear_layers(tmp_path):
    model, inputs = mlp("cpu")
    problems = warm_module.model_problems(model, inputs, {"cache_dir": str(tmp_path), "families": ["gemm"]})
    first = next(p for _, p in problems.values() if p.op == ADDMM and p.dim("K") == 13)
    assert (first.dim("M"), first.dim("N")) == (6, 16)
    assert first.param("b_layout") == "column" and first.param("bias") == "row"
