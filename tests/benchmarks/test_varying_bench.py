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


def test_tiny_dlrm_after_a_short_batch(tmp_path):
    """The second batch is short: Inductor and kevolve compile the graph again at a symbolic batch, which the
    full batch after it runs too; kevolve matches eager on all three."""
    out = tmp_path / "short.json"
    assert varying.run("dlrm_short_batch_tiny", "cpu", 3, {"interpret": True}, out) == 0
    report = json.loads(out.read_text())
    assert {name: c["graphs_compiled"] for name, c in report["contenders"].items()} == {
        "eager": 0, "inductor": 2, "kevolve": 2}
    batches = [varying.MODELS["dlrm_short_batch_tiny"].batch("cpu", seed)[0].shape[0] for seed in range(3)]
    assert batches == [8, 5, 8]
