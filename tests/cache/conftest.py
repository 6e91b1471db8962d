"""Cache-test fixtures: a fake kernel family whose kernel source is a module file each test owns."""
import dataclasses
import sys
import uuid

import pytest

from torch_kevolve.cache import KernelRecord
from torch_kevolve.families.base import Abstraction, GenomeSpace, Implementation, KernelFamily, Unsupported
from torch_kevolve.key import DeviceInfo, OpKey, Problem

KERNEL_SOURCE = '"""A fake kernel for cache tests."""\n\n\ndef kernel(x):\n    return x\n'


class FakeFamily(KernelFamily):
    """A family that matches no graph node; only its name, version and implementations matter here."""

    def problem(self, overload, args, kwargs):
        raise Unsupported("the fake family matches nothing")

    def make_inputs(self, problem, seed, dist, device):
        return ()

    def reference(self, problem, args):
        return ()

    def checked_outputs(self, problem):
        return ()

    def bytes_moved(self, problem):
        return 0


@pytest.fixture
def kernel_module(tmp_path, monkeypatch):
    """Path of an importable module holding the fake kernel's source; edit it to make records stale."""
    name = f"kevolve_fake_kernel_{uuid.uuid4().hex}"
    path = tmp_path / "kernels" / f"{name}.py"
    path.parent.mkdir()
    path.write_text(KERNEL_SOURCE)
    monkeypatch.syspath_prepend(str(path.parent))
    yield path
    sys.modules.pop(name, None)


@pytest.fixture
def family(kernel_module):
    implementation = Implementation(
        name="fake_triton",
        abstraction=Abstraction.TRITON,
        genome_space=GenomeSpace((("BLOCK", (64, 128)),)),
        build=lambda problem, genome: (lambda x: x),
        supports=lambda problem, genome: None,
        source_modules=(kernel_module.stem,),
    )
    return FakeFamily(name="fake", version="1", overloads=(), implementations=(implementation,))


@pytest.fixture
def make_key():
    def make(n: int = 1000) -> OpKey:
        problem = Problem("fake", "fake.default", (("mode", "sum"),), (("n", n),), (("x", "float32"),))
        return OpKey.of(problem, DeviceInfo("cpu", "Fake CPU", ""))

    return make


@pytest.fixture
def make_record(family, make_key):
    """make(n=1000, fitness=2.0, **fields) -> a record of the fake kernel on make_key(n), fields replaced."""

    def make(n: int = 1000, fitness: float = 2.0, **fields) -> KernelRecord:
        record = KernelRecord.measured(
            make_key(n), family, family.implementations[0], {"BLOCK": 64},
            t_ref_us=10.0 * fitness, t_cand_us=10.0, stats={"evaluations": 3, "method": "test"},
        )
        return dataclasses.replace(record, **fields)

    return make
