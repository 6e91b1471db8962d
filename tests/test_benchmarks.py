"""The benchmark models at test size train under backend="kevolve" as in eager; the harness reports every field."""
import json

import pytest
import torch

from benchmarks import report
from benchmarks.harness import Reference, max_grad_error, rel_err, train_step
from benchmarks.run import BENCHMARKS, run
from torch_kevolve.backend.decisions import collect_decisions

FAMILY_OPS = {"dcnv2_tiny": "aten._embedding_bag.default", "seq_tiny": "aten.embedding.default",
              "dlrm_bf16_tiny": "aten._embedding_bag.default"}


@pytest.mark.parametrize("name", sorted(FAMILY_OPS))
def test_model_under_interpreted_kevolve_kernels_matches_eager(name, tmp_path):
    torch._dynamo.reset()
    bench = BENCHMARKS[name]
    model, inputs = bench.factory("cpu")
    ref = Reference.of(model, inputs)
    compiled = torch.compile(model, backend="kevolve", options={"interpret": True, "cache_dir": str(tmp_path)})
    with collect_decisions() as decisions:
        loss = train_step(compiled, inputs)
    assert rel_err(loss.item(), ref.loss) <= bench.tolerance.loss
    assert max_grad_error(model, ref)[0] <= bench.tolerance.grad
    claimed = {d.op for d in decisions if d.claimed}
    assert FAMILY_OPS[name] in claimed
    assert {d.graph for d in decisions if d.claimed} == {"forward", "backward"}
