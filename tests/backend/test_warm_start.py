"""backend/warm_start: the backend hands Inductor the static-launch setting for user-defined Triton kernels (one
Inductor accepts), and nothing where torch lacks it."""
import torch
import torch._inductor.config as inductor_config

import torch_kevolve.backend as backend
from torch_kevolve.backend import warm_start


def _compile_patches(monkeypatch) -> dict:
    seen = []

    def compile_fx(gm, example_inputs, config_patches):
        seen.append(config_patches)
        return gm.forward

    monkeypatch.setattr(backend, "compile_fx", compile_fx)
    torch._dynamo.reset()
    x = torch.randn(4, 3)
    torch.testing.assert_close(torch.compile(lambda t: t.sin() + 1, backend="kevolve")(x), x.sin() + 1)
    torch._dynamo.reset()
    assert len(seen) == 1
    return seen[0]


def test_backend_statically_launches_user_defined_kernels(monkeypatch):
    patches = _compile_patches(monkeypatch)
    assert patches[warm_start.STATIC_LAUNCH] is True
    with inductor_config.patch(warm_start.static_launch_patches()):  # a setting this torch's Inductor knows
        assert getattr(inductor_config, warm_start.STATIC_LAUNCH) is True


def test_static_launch_patches_empty_where_torch_lacks_the_setting(monkeypatch):
    monkeypatch.setattr(warm_start, "inductor_config", object())  # a config without it
    assert warm_start.static_launch_patches() == {}

