"""The Inductor cat settings kevolve picks for graphs with wide batched embedding bags (backend/cat_inputs.py)."""
import pytest
import torch
import torch._inductor.config as inductor_config

import torch_kevolve.backend as backend
from benchmarks.models.dlrm import DLRM, TINY, make_inputs
from torch_kevolve.backend.cat_inputs import cat_patches


def _compile_patches(monkeypatch, tables: int) -> dict:
    """The config patches kevolve_backend hands compile_fx for a DLRM of `tables` tables (forward only)."""
    seen = []

    def compile_fx(gm, example_inputs, config_patches, **kwargs):
        seen.append(config_patches)
        return gm.forward

    monkeypatch.setattr(backend, "compile_fx", compile_fx)
    cfg = TINY.__class__(**{**TINY.__dict__, "num_tables": tables})
    torch.manual_seed(0)
    model, inputs = DLRM(cfg), make_inputs(cfg, "cpu")
    torch._dynamo.reset()
    with torch.no_grad():
        got = torch.compile(model, backend="kevolve")(*inputs)
        torch.testing.assert_close(got, model(*inputs))
    torch._dynamo.reset()
    assert len(seen) == 1
    return seen[0]


def test_wide_embedding_bags_raise_the_pointwise_cat_limits(monkeypatch):
    patches = _compile_patches(monkeypatch, tables=12)
    assert patches["max_pointwise_cat_inputs"] == 13  # 12 tables + the dense slot of the stack
    if hasattr(inductor_config, "max_complex_pointwise_cat_inputs"):
        assert patches["max_complex_pointwise_cat_inputs"] == 13
    assert "force_pointwise_cat" not in patches  # a CPU graph: Inductor copies input by input there anyway
    assert "post_grad_custom_post_pass" in patches


def test_narrow_embedding_bags_leave_the_limits(monkeypatch):
    patches = _compile_patches(monkeypatch, tables=3)
    assert not {"max_pointwise_cat_inputs", "max_complex_pointwise_cat_inputs", "force_pointwise_cat"} & set(patches)


@pytest.mark.parametrize("device, forced", [("meta", True), ("cpu", False)])
def test_gpu_graphs_force_one_pointwise_kernel(device, forced):
    """A graph whose wide call's tables are not on the CPU (meta stands for a GPU here) forces pointwise cats."""
    graph = torch.fx.Graph()
    weights = []
    for t in range(10):
        w = graph.placeholder(f"w{t}")
        w.meta["example_value"] = torch.empty(4, 2, device=device)
        weights.append(w)
    indices = [graph.placeholder(f"i{t}") for t in range(10)]
    offsets = [graph.placeholder(f"o{t}") for t in range(10)]
    out = graph.call_function(torch.ops.kevolve.embedding_bags.default, (weights, indices, offsets, 0, False))
    graph.output(out)
    patches = cat_patches(torch.fx.GraphModule(torch.nn.Module(), graph))
    assert patches.get("force_pointwise_cat", False) is forced
    assert patches["max_pointwise_cat_inputs"] == 11
