"""When compiling a graph with kevolve's kernels fails, the graph as Dynamo gave it is compiled by Inductor alone
(a warning says so) and the model still matches eager; with fallback off the error reaches the user."""
import logging

import pytest
import torch

import torch_kevolve.backend as backend
from benchmarks.models.dlrm import small_dlrm


def _failing_inductor(monkeypatch):
    """Inductor's compile_fx, failing whenever kevolve's pass is in its patches (as a kernel Inductor cannot
    lower would); the patches of every call, in order."""
    calls, original = [], backend.compile_fx

    def compile_fx(gm, example_inputs, config_patches):
        calls.append(config_patches)
        if "post_grad_custom_post_pass" in config_patches:
            raise RuntimeError("cannot lower this kernel")
        return original(gm, example_inputs, config_patches=config_patches)

    monkeypatch.setattr(backend, "compile_fx", compile_fx)
    return calls


def test_a_failed_compile_falls_back_to_inductor_alone(tmp_path, monkeypatch, caplog):
    calls = _failing_inductor(monkeypatch)
    torch._dynamo.reset()
    model, inputs = small_dlrm("cpu")
    want = model(*inputs)
    with caplog.at_level(logging.WARNING, logger="torch_kevolve"):
        got = torch.compile(model, backend="kevolve", options={"cache_dir": str(tmp_path)})(*inputs)
    torch._dynamo.reset()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert [("post_grad_custom_post_pass" in patches) for patches in calls] == [True, False]
    assert "compiling the graph with kevolve's kernels failed (RuntimeError: cannot lower this kernel)" in caplog.text


def test_without_fallback_the_failure_is_raised(tmp_path, monkeypatch):
    _failing_inductor(monkeypatch)
    torch._dynamo.reset()
    model, inputs = small_dlrm("cpu")
    compiled = torch.compile(model, backend="kevolve", options={"cache_dir": str(tmp_path), "fallback": False})
    with pytest.raises(Exception, match="cannot lower this kernel"):
        compiled(*inputs)
    torch._dynamo.reset()
