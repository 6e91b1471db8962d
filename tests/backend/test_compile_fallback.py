"""When compiling a graph with kevolve's kernels fails, the graph as Dynamo gave it is compiled by Inductor alone;
when lowering one graph after autograd fails (the backward too, which AOTAutograd lowers at the first backward),
that graph is lowered by Inductor alone; a warning says so and the model still matches eager. With fallback off
the error reaches the user."""
import copy
import logging

import pytest
import torch
import torch._inductor.config as inductor_config

import torch_kevolve.backend as backend
from benchmarks.models.dlrm import small_dlrm


def _failing_inductor(monkeypatch):
    """Inductor's compile_fx, failing whenever kevolve's pass is in its patches (as a kernel Inductor cannot
    lower would); the patches of every call, in order."""
    calls, original = [], backend.compile_fx

    def compile_fx(gm, example_inputs, config_patches, **kwargs):
        calls.append(config_patches)
        if "post_grad_custom_post_pass" in config_patches:
            raise RuntimeError("cannot lower this kernel")
        return original(gm, example_inputs, config_patches=config_patches, **kwargs)

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


def test_a_failed_backward_lowering_falls_back_to_inductor_alone(tmp_path, monkeypatch, caplog):
    lowered, original = [], backend.compile_fx_inner

    def compile_fx_inner(gm, example_inputs, **kwargs):
        with_pass = inductor_config.post_grad_custom_post_pass is not None
        lowered.append(("backward" if kwargs.get("is_backward") else "forward", with_pass))
        if with_pass and kwargs.get("is_backward"):
            raise RuntimeError("cannot lower this backward kernel")
        return original(gm, example_inputs, **kwargs)

    monkeypatch.setattr(backend, "compile_fx_inner", compile_fx_inner)
    torch._dynamo.reset()
    model, inputs = small_dlrm("cpu")
    twin = copy.deepcopy(model)
    model(*inputs).backward()
    with caplog.at_level(logging.WARNING, logger="torch_kevolve"):
        torch.compile(twin, backend="kevolve", options={"cache_dir": str(tmp_path)})(*inputs).backward()
    torch._dynamo.reset()
    for (name, want), got in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert lowered == [("forward", True), ("backward", True), ("backward", False)]
    assert ("lowering the backward graph with kevolve's kernels failed (RuntimeError: cannot lower this backward "
            "kernel)") in caplog.text
