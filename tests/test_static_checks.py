"""Static checks refuse candidates that cheat or escape, and pass the kernels we ship."""
import pytest

from torch_kevolve.evolve.static_checks import implementation_violations, own_operator_names, violations
from torch_kevolve.families import FAMILIES

CHEATS = {
    "import threading\n": "imports threading",
    "from concurrent.futures import ThreadPoolExecutor\n": "imports concurrent.futures",
    "import os\nos.system('x')\n": "imports os",
    "s = torch.cuda.Stream()\n": "side CUDA stream",
    "with torch.cuda.stream(s):\n    pass\n": "side CUDA stream",
    "data = open('/etc/passwd').read()\n": "calls open()",
    "exec('x = 1')\n": "calls exec()",
    "triton.testing.do_bench = lambda *a, **k: 0.001\n": "patches triton.testing.do_bench",
    "time.perf_counter = lambda: 0\n": "patches time.perf_counter",
    "torch.cuda.synchronize = lambda: None\n": "patches torch.cuda.synchronize",
    "out = torch.ops.aten._embedding_bag(w, i, o)\n": "hands its own operator back",
    "out = F.embedding_bag(i, w, o)\n": "hands its own operator back",
    "g = torch.ops.aten._embedding_bag_dense_backward(*a)\n": "hands its own operator back",
    "out = aten._embedding_bag_forward_only.default(w, i, o)\n": "hands its own operator back",
    "def f(:\n": "syntax error",
    "s = torch.Stream()\n": "side CUDA stream",
    "from torch.cuda import Stream\n": "side CUDA stream",
    "import torch.multiprocessing as mp\n": "imports torch.multiprocessing",
    "f = torch.jit.fork(g, x)\n": "concurrency or file access",
    "w = torch.load('weights.pt')\n": "concurrency or file access",
    "from pathlib import Path\n": "imports pathlib",
    "from unittest import mock\n": "imports unittest",
    "import triton.testing as tt\ntt.do_bench = lambda *a, **k: 0.001\n": "patches tt.do_bench",
    "kernel.__call__ = fast\n": "patches kernel.__call__",
    "import torch.nn.functional as fn\nout = fn.embedding_bag(i, w, o)\n": "hands its own operator back",
    "from torch.nn.functional import embedding_bag\n": "hands its own operator back",
    "out = weight.float().embedding_bag(i)\n": "hands its own operator back",
    "op = getattr(torch.ops.aten, name)\n": "looks up a torch attribute by name",
    "v = vars(torch)\n": "calls vars()",
}


@pytest.mark.parametrize("source, why", CHEATS.items())
def test_cheats_are_refused(source, why):
    found = violations(source, own_ops=("embedding_bag",))
    assert found and why in " ".join(found)


def test_honest_kernel_code_passes():
    source = (
        "import torch\nimport triton\nimport triton.language as tl\n"
        "def f(w, i):\n    out = torch.empty(4, device=w.device)\n"
        "    rows, order = torch.sort(i)\n    embedding_bag(w, rows)\n"
        "    return torch.index_select(w, 0, rows).sum(0)\n"
    )
    assert violations(source, own_ops=("embedding_bag",)) == []


def test_python_number_arithmetic_is_not_the_operator():
    source = "import math\ndef rows(shape, x):\n    return math.prod(shape), x.prod()\n"
    assert violations(source, own_ops=("prod",)) == ["line 3: hands its own operator back to PyTorch (x.prod)"]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_shipped_implementations_pass(family):
    first = family.overloads[0].name().split("::")[-1].lstrip("_")
    assert first in own_operator_names(family)
    for impl in family.implementations:
        assert implementation_violations(family, impl) == [], impl.name
