"""nn.Embedding tables trained under backend="kevolve" on CPU: the dense backward of each lookup reaches the
families as aten.embedding_dense_backward (kept whole through autograd by kevolve::embedding), and where no kernel
takes it, Inductor compiles its own decomposition of it, not ATen's kernel; the two gradients of a table looked up
twice are summed by one backward over both lookups; losses and gradients match eager."""
import copy
import re

import torch
import torch.nn as nn
from torch._inductor.utils import run_and_get_code

from tests.backend.test_end_to_end import train
from torch_kevolve.backend.decisions import collect_decisions

BACKWARD = "aten.embedding_dense_backward.default"


class Lookups(nn.Module):
    """Two trained tables (one with a padding row) looked up by [batch, 3] ids, the first twice (by 18 ids, then 6):
    its gradient is one backward over 24 ids."""

    def __init__(self):
        super().__init__()
        self.items = nn.Embedding(12, 4, padding_idx=0)
        self.users = nn.Embedding(5, 4)
        self.head = nn.Linear(4, 1)

    def forward(self, items, users):
        pooled = self.items(items).sum(1) * self.users(users).mean(1) + self.items(items[:, :1]).squeeze(1)
        return self.head(pooled).square().mean()


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 12, (6, 3), generator=g), torch.randint(0, 5, (6, 3), generator=g)


def _train_against_eager(options):
    """Trains a compiled twin next to eager and checks them equal; the kevolve decisions and Inductor's code."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = Lookups()
    twin = copy.deepcopy(model)
    want_losses, want_grads = train(model, _inputs())
    compiled = torch.compile(twin, backend="kevolve", options=options)
    with collect_decisions() as decisions:
        (got_losses, got_grads), code = run_and_get_code(train, compiled, _inputs())
    torch.testing.assert_close(got_losses, want_losses, rtol=1e-5, atol=1e-6)
    for got, want in zip(got_grads, want_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    return decisions, "\n".join(code)


def test_interpret_mode_runs_kevolves_kernel_for_every_lookups_backward(tmp_path):
    decisions, _ = _train_against_eager({"interpret": True, "cache_dir": str(tmp_path)})
    claimed = [(d.graph, d.op) for d in decisions if d.claimed and d.family == "gather"]
    assert claimed.count(("forward", "aten.embedding.default")) == 3
    assert claimed.count(("backward", BACKWARD)) == 2
    items = [d.key for d in decisions if d.op == BACKWARD and "padding_idx=0," in d.key]
    assert len(items) == 1 and "index_rank=1," in items[0]  # the two [6, k] lookups' ids, flattened and joined
    assert not any("kevolve.embedding" in d.op for d in decisions)


def test_without_a_kernel_inductor_compiles_its_own_decomposition(tmp_path):
    decisions, code = _train_against_eager({"cache_dir": str(tmp_path), "shipped_cache": False})
    left = [d.reason for d in decisions if d.op == BACKWARD]
    assert len(left) == 2 and all("no cached kernel" in reason for reason in left)
    # Inductor's kernels keep the name of the op they came from; ATen's kernel or our op would be called by name.
    assert re.search(r"cpp_fused_\w*embedding_dense_backward", code)
    assert "embedding_dense_backward.default(" not in code and "kevolve.embedding" not in code
