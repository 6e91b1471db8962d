"""benchmarks.varying on CPU: the tiny DLRM trained on batches of differing bag lengths under eager, Inductor and
kevolve; kevolve compiles no more graphs than Inductor (two: static, then symbolic) and matches eager on every
batch; the JSON and markdown report it."""
import json

from benchmarks import varying


def test_tiny_dlrm_on_varying_lengths(tmp_path):
    out = tmp_path / "varying.json"
    assert varying.run("dlrm_tiny", "cpu", 3, {}, out) == 0
    report = json.loads(out.read_text())
    compiled = {name: c["graphs_compiled"] for name, c in report["contenders"].items()}
    assert compiled == {"eager": 0, "inductor": 2, "kevolve": 2}
    kevolve = report["contenders"]["kevolve"]
    assert kevolve["loss_rel_err"] <= 1e-4 and kevolve["grad_rel_err"] <= 1e-3 and report["ok"]
    assert kevolve["phases"]["train"]["wall_us"] > 0
    assert "Graphs Dynamo compiled: eager 0, inductor 2, kevolve 2." in out.with_suffix(".md").read_text()


def test_batches_differ_in_length():
    lengths = {tuple(i.numel() for i in varying.MODELS["dlrm_tiny"].batch("cpu", seed)[1]) for seed in range(3)}
    assert len(lengths) == 3
