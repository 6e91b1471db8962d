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


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_shipped_implementations_pass(family):
    first = family.overloads[0].name().split("::")[-1].lstrip("_")
    assert first in own_operator_names(family)
    for impl in family.implementations:
        assert implementation_violations(family, impl) == [], impl.name
