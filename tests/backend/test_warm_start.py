"""backend/warm_start: the backend hands Inductor the static-launch setting for user-defined Triton kernels (one
Inductor accepts), and its compile workers through the environment (read back by a fresh process), from the
backend's import on; a pool of workers already running then is reported once; nothing where torch lacks the setting
or the user turned it off."""
import os
import subprocess
import sys

import torch
import torch._inductor.config as inductor_config

import torch_kevolve.backend as backend
from torch_kevolve.backend import warm_start


def _compile_patches(monkeypatch) -> dict:
    seen = []

    def compile_fx(gm, example_inputs, config_patches, **kwargs):
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
    monkeypatch.delenv(warm_start.WORKER_ENVIRONMENT, raising=False)
    patches = _compile_patches(monkeypatch)
    assert patches[warm_start.STATIC_LAUNCH] is True
    with inductor_config.patch(warm_start.static_launch_patches()):  # a setting this torch's Inductor knows
        assert getattr(inductor_config, warm_start.STATIC_LAUNCH) is True


def test_static_launch_patches_empty_where_torch_lacks_the_setting(monkeypatch):
    monkeypatch.setattr(warm_start, "inductor_config", object())  # a config without it
    assert warm_start.static_launch_patches() == {}


def test_workers_started_later_read_the_setting_from_the_environment(monkeypatch):
    """A fresh process (as Inductor's compile workers are) sees the setting that the patches put in the
    environment."""
    monkeypatch.delenv(warm_start.WORKER_ENVIRONMENT, raising=False)
    assert warm_start.static_launch_patches() == {warm_start.STATIC_LAUNCH: True}
    read = subprocess.run([sys.executable, "-c", "import torch._inductor.config as c; "
                           f"print(c.{warm_start.STATIC_LAUNCH})"], capture_output=True, text=True, check=True)
    assert read.stdout.strip() == "True"


def test_the_user_can_turn_static_launch_off(monkeypatch):
    monkeypatch.setenv(warm_start.WORKER_ENVIRONMENT, "0")
    assert warm_start.static_launch_patches() == {}
    assert os.environ[warm_start.WORKER_ENVIRONMENT] == "0"


def _fresh_process(code: str, environment: str | None) -> str:
    """stdout and stderr of `code` run by a fresh interpreter whose WORKER_ENVIRONMENT is `environment` (None:
    unset)."""
    env = {k: v for k, v in os.environ.items() if k != warm_start.WORKER_ENVIRONMENT}
    if environment is not None:
        env[warm_start.WORKER_ENVIRONMENT] = environment
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return done.stdout + done.stderr


IMPORT_THEN_COMPILE = f"""
import os
{{before}}
from torch_kevolve.backend import warm_start
print("environment", os.environ.get("{warm_start.WORKER_ENVIRONMENT}"))
print("patches", warm_start.static_launch_patches(), warm_start.static_launch_patches())
"""


def test_importing_the_backend_sets_the_environment_before_any_compile():
    out = _fresh_process(IMPORT_THEN_COMPILE.format(before=""), None)
    assert "environment 1" in out and "started before" not in out


def test_a_pool_started_before_the_import_is_reported_once():
    before = "import torch._inductor.async_compile as a; a._pool_set.add(object())  # a running pool"
    out = _fresh_process(IMPORT_THEN_COMPILE.format(before=before), None)
    assert "environment 1" in out and out.count("compile workers started before torch_kevolve.backend") == 1


def test_the_users_setting_is_kept_at_import():
    out = _fresh_process(IMPORT_THEN_COMPILE.format(before=""), "0")
    assert "environment 0" in out and "patches {} {}" in out
