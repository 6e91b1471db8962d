"""A WuKong-style factorization-machine block trained one step under backend="kevolve": x @ (xᵀ @ projection)
becomes kevolve::fm_interaction; with default options (empty cache) it is decomposed back to ATen, in interpret
mode our FM kernels run forward and backward; loss and gradients match eager either way."""
import logging

import torch
import torch.nn.functional as F

import torch_kevolve.warm as warm_module
from tests.backend.test_interaction_end_to_end import assert_matches_eager, train_step

FORWARD, BACKWARD = "kevolve.fm_interaction.default", "kevolve.fm_interaction_backward.default"


class FMBlock(torch.nn.Module):
    """Dense features [B, rows, 5] embedded to [B, rows, dim], their FM interaction with a learned [rows, k]
    projection, and a linear head on the flattened result, trained to a regression target."""

    def __init__(self, rows: int = 6, dim: int = 16, k: int = 4):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.embed = torch.nn.Linear(5, dim)
        self.projection = torch.nn.Parameter(torch.randn(rows, k, generator=g) / rows)
        self.head = torch.nn.Linear(rows * k, 1)

    def forward(self, dense: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = self.embed(dense)
        out = x @ (x.transpose(1, 2) @ self.projection)
        return F.mse_loss(self.head(out.flatten(1)).squeeze(1), target)


def fm_block(device):
    """The FM block and a batch of 3 samples."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model = FMBlock().to(device)
    return model, (torch.randn(3, 6, 5, generator=g).to(device), torch.randn(3, generator=g).to(device))


def test_unclaimed_fm_interaction_is_decomposed_back_to_aten(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG, logger="torch_kevolve"):
        want, got, model, twin, decisions = train_step({"shipped_cache": False}, tmp_path, fm_block)
    assert_matches_eager(want, got, model, twin)
    seen = {(d.graph, d.op): d for d in decisions}
    assert not seen["forward", FORWARD].claimed and not seen["backward", BACKWARD].claimed
    assert seen["forward", FORWARD].family == "fm_interaction" and seen["forward", FORWARD].problem.param("shared")
    assert ("forward", "aten.bmm.default") in seen and ("backward", "aten.bmm.default") in seen
    assert sum("decomposed back to ATen" in r.getMessage() and "fm_interaction" in r.getMessage()
               for r in caplog.records) == 2


def test_interpret_mode_runs_our_fm_kernels(tmp_path):
    options = {"interpret": True, "families": ["fm_interaction"]}
    want, got, model, twin, decisions = train_step(options, tmp_path, fm_block)
    assert_matches_eager(want, got, model, twin)
    claimed = {(d.graph, d.op): d.implementation for d in decisions if d.claimed}
    assert claimed == {("forward", FORWARD): "fm_interaction_triton", ("backward", BACKWARD): "fm_interaction_triton"}
    assert not any(d.op == "aten.bmm.default" for d in decisions)


def test_warm_sees_the_fm_keys(tmp_path):
    model, inputs = fm_block("cpu")
    problems = warm_module.model_problems(model, inputs, {"cache_dir": str(tmp_path), "families": ["fm_interaction"]})
    assert sorted(p.op for _, p in problems.values()) == [FORWARD, BACKWARD]
    forward = next(p for _, p in problems.values() if p.op == FORWARD)
    assert tuple(forward.dim(n) for n in ("batch", "rows", "dim", "k")) == (3, 6, 16, 4)
