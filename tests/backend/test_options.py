"""Backend options: validation, defaults, and how torch.compile hands them to the backend."""
from pathlib import Path

import pytest
import torch

from torch_kevolve.backend import kevolve_backend
from torch_kevolve.backend.options import KevolveOptions


def test_defaults_use_env_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KEVOLVE_CACHE_DIR", str(tmp_path / "c"))
    assert KevolveOptions.from_user(None).cache_dir == tmp_path / "c"


def test_known_options_are_typed():
    opts = KevolveOptions.from_user({"cache_dir": "~/x", "verify": True, "families": ["embedding_bag"]})
    assert opts.cache_dir == Path("~/x").expanduser() and opts.verify and opts.families == ("embedding_bag",)


@pytest.mark.parametrize("bad, name", [({"cachedir": "/tmp"}, "cachedir"), ({"verify": "yes"}, "verify"),
                                       ({"families": "embedding_bag"}, "families"), ({"cache_dir": 3}, "cache_dir")])
def test_bad_options_name_the_option(bad, name):
    with pytest.raises(ValueError, match=name):
        KevolveOptions.from_user(bad)


def test_torch_compile_rejects_unknown_option_through_the_entry_point():
    fn = torch.compile(lambda x: x + 1, backend="kevolve", options={"no_such_option": 1})
    with pytest.raises(Exception, match="no_such_option"):
        fn(torch.ones(3))


def test_unknown_mode_is_rejected():
    gm = torch.fx.symbolic_trace(torch.nn.ReLU())
    with pytest.raises(ValueError, match="mode"):
        kevolve_backend(gm, [torch.ones(2)], mode="fastest")


def test_mode_reaches_inductor_through_the_entry_point():
    fn = torch.compile(lambda x: x * 2, backend="kevolve", mode="max-autotune-no-cudagraphs")
    torch.testing.assert_close(fn(torch.arange(4.0)), torch.arange(4.0) * 2)
