"""The benchmark models at test size train under backend="kevolve" as in eager; the harness reports every field."""
import json

import pytest
import torch

from benchmarks import report
from benchmarks.harness import Phase, Reference, Result, Tolerance, max_grad_error, rel_err, train_step
from benchmarks.run import BENCHMARKS, RunConfig, run
from torch_kevolve.backend.decisions import collect_decisions

FAMILY_OPS = {"dcnv2_tiny": "kevolve.embedding_bags_stack.default", "seq_tiny": "aten.embedding.default",
              "dlrm_bf16_tiny": "kevolve.embedding_bags_backward.default"}


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


def test_harness_run_saves_every_field(tmp_path, monkeypatch):
    monkeypatch.setenv("KEVOLVE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "results" / "dlrm_tiny.json"
    assert run(RunConfig("dlrm_tiny", "cpu", save=out)) == 0
    saved = json.loads(out.read_text())
    assert saved["benchmark"] == "dlrm_tiny" and saved["device"]["type"] == "cpu"
    assert saved["versions"]["torch"] == torch.__version__ and saved["date"] and saved["command"]
    assert list(saved["contenders"]) == ["eager", "inductor", "kevolve"]
    for c in saved["contenders"].values():
        for phase in ("train", "forward"):
            p = c["phases"][phase]
            assert p["wall_us"] > 0 and p["first_call_s"] > 0 and p["kernel_us"] is None and p["peak_mib"] is None
        assert c["loss_rel_err"] <= 1e-4 and c["grad_rel_err"] <= 1e-3
        assert c["phases"]["train"]["warm_call_s"] > 0 and c["phases"]["forward"]["warm_call_s"] is None
    for name in ("inductor", "kevolve"):  # the second compile found the first one's on-disk caches
        train = saved["contenders"][name]["phases"]["train"]
        assert train["warm_call_s"] < train["first_call_s"] / 2
        caches = train["warm_call_caches"]
        assert caches["fx_graph_hit"] >= 2 and caches["fx_graph_miss"] == caches["fx_graph_bypass"] == 0
    walls = {name: c["phases"]["train"]["wall_us"] for name, c in saved["contenders"].items()}
    assert saved["speedup_vs_inductor"]["kevolve"]["train_wall"] == pytest.approx(walls["inductor"] / walls["kevolve"])
    assert saved["ok"] is True and saved["warm"] is None and saved["families"] is None
    assert saved["nodes"] >= len(saved["claimed"]) + len(saved["left"]) > 0
    md = out.with_suffix(".md").read_text()
    assert all(f"| {name} | " in md for name in saved["contenders"])
    assert saved["reference"] == "float64" and "kevolve vs float64: OK" in md


def test_warm_only_fills_the_cache_and_measures_nothing(tmp_path, monkeypatch):
    """`--warm-only` evolves the model's keys into the user cache and stops before any contender is timed."""
    import benchmarks.run as run_module
    from torch_kevolve.cache.store import UserStore
    from torch_kevolve.evolve.search import SearchConfig
    from torch_kevolve.evolve.termination import Termination

    monkeypatch.setenv("KEVOLVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(run_module, "measure", lambda *a, **k: pytest.fail("--warm-only measured a contender"))
    search = SearchConfig(policy="greedy", termination=Termination(max_evaluations=2))
    assert run(RunConfig("dlrm_tiny", "cpu", search, 120.0, families=("embedding_bags_backward",), warm_only=True)) == 0
    assert UserStore(tmp_path / "cache").records()


def test_retune_and_check_model_reach_the_warm(monkeypatch):
    """`--retune` asks the warm to search keys the caches already answer (to try a new implementation);
    `--check-model` to check the new records in the model."""
    import benchmarks.run as run_module
    from torch_kevolve.evolve.search import SearchConfig

    seen = []
    monkeypatch.setattr(run_module, "warm", lambda *a, **k: seen.append((k["retune"], k["check_model"])))
    for retune, check in ((False, False), (True, False), (False, True)):
        run(RunConfig("dlrm_tiny", "cpu", SearchConfig(), 1.0, warm_only=True, retune=retune, check_model=check))
    assert seen == [(False, False), (True, False), (False, True)]


def test_markdown_of_a_forward_only_gpu_run():
    results = [Result("inductor", {"forward": Phase(200.0, 100.0, 64.0, 30.0)}, 0.0),
               Result("kevolve", {"forward": Phase(150.0, 40.0, 32.5, 35.0)}, 1e-7)]
    summary = report.summary("x", torch.device("cpu"), results, [], BENCHMARKS["dlrm_tiny"].tolerance, True, None)
    assert summary["speedup_vs_inductor"]["kevolve"] == {"forward_wall": pytest.approx(200 / 150),
                                                         "forward_kernel": pytest.approx(2.5)}
    md = report.markdown(summary)
    assert "train" not in md
    assert "| kevolve | 150.0 / 40.0 | 1.33x / 2.50x | 32.5 | 35.00 / - | 1.0e-07 | - |" in md
    warm = Result("kevolve", {"forward": Phase(150.0, 40.0, 32.5, 35.0, warm_call_s=1.5)}, 1e-7)
    assert "| 32.5 | 35.00 / 1.50 |" in report.markdown(report.summary("x", torch.device("cpu"), [results[0], warm], [],
                                                                       BENCHMARKS["dlrm_tiny"].tolerance, True, None))


def test_markdown_names_the_longest_kernels_where_the_profiler_recorded_them():
    top = {"embedding_bags_forward_kernel": 212.4, "gemm_kernel": 110.2, "triton_poi_fused_relu_0": 3.1}
    results = [Result("inductor", {"forward": Phase(200.0, 100.0, 64.0, 30.0)}, 0.0),
               Result("kevolve", {"forward": Phase(150.0, 325.7, 32.5, 35.0, top_kernels=top,
                                                   top_kernel_launches=dict.fromkeys(top, 1.0) | {"gemm_kernel": 8.0})},
                      1e-7)]
    md = report.markdown(report.summary("x", torch.device("cpu"), results, [], BENCHMARKS["dlrm_tiny"].tolerance,
                                        True, None))
    assert ("- kevolve forward: 212 us `embedding_bags_forward_kernel`, 110 us `gemm_kernel` x8, "
            "3 us `triton_poi_fused_relu_0`") in md
    assert "- inductor forward" not in md


def test_float64_reference_is_the_model_in_float64_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    x, y = torch.randn(5, 3), torch.randn(5, 1)

    class Loss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x, y):
            return ((self.net(x) - y) ** 2).mean()

    wrapped = Loss()
    ref = Reference.float64(wrapped, (x, y))
    w1, b1, w2, b2 = (t.detach().double().requires_grad_() for t in (model[0].weight, model[0].bias,
                                                                    model[2].weight, model[2].bias))
    loss = (((x.double() @ w1.T + b1).relu() @ w2.T + b2 - y.double()) ** 2).mean()
    loss.backward()
    assert ref.loss == pytest.approx(loss.item(), rel=1e-15)
    assert set(ref.grads) == {"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"}
    assert ref.grads["net.0.weight"].dtype == torch.float64 and torch.equal(ref.grads["net.0.weight"], w1.grad)
    assert model[0].weight.dtype == torch.float32 and model[0].weight.grad is None


def test_tolerance_widens_to_twice_the_baselines_own_errors():
    eager, inductor = Result("eager", loss_rel_err=1e-7, grad_rel_err=1e-2), Result("inductor", loss_rel_err=3e-4,
                                                                                   grad_rel_err=2e-4)
    assert Tolerance(1e-4, 1e-3).at_least_twice(eager, inductor) == Tolerance(6e-4, 2e-2)
    assert Tolerance(1e-4, 1e-3).at_least_twice(Result("eager", loss_rel_err=0.0)) == Tolerance(1e-4, 1e-3)


def test_grad_error_is_relative_to_each_parameter_floored_by_the_largest_gradient():
    model = torch.nn.Linear(3, 2)
    ref = Reference(0.0, {"weight": torch.tensor([[4.0, 0, 0], [0, 0, 0]]), "bias": torch.zeros(2)})
    model.weight.grad = torch.tensor([[4.0, 0, 0], [0, 0, 2.0]])
    model.bias.grad = torch.zeros(2)
    assert max_grad_error(model, ref) == (0.5, "weight")
    model.weight.grad = ref.grads["weight"].clone()
    model.bias.grad = torch.tensor([0.0, 1e-6])  # rounding noise where the exact gradient is 0: 1e-6 / (1e-3 * 4)
    assert max_grad_error(model, ref) == (pytest.approx(2.5e-4), "bias")
    model.bias.grad = None
    assert max_grad_error(model, ref) == (float("inf"), "bias")


def test_interaction_benchmark_skips_cleanly_without_cuda(tmp_path, capsys):
    from benchmarks import interaction

    assert interaction.main([str(tmp_path / "out.json")]) == 0
    assert "needs a CUDA device; skipped" in capsys.readouterr().out and not (tmp_path / "out.json").exists()


def test_interaction_sweep_is_valid_at_dlrms_size():
    """Every sweep genome is in the genome space and runs DLRM's fp32 interaction (the gram ones its backward
    too, but for tf32_split, the forward's); the bf16 sweep keeps every genome but the fp32-only precisions."""
    from benchmarks import interaction
    from torch_kevolve.families import INTERACTION

    impl = INTERACTION.implementation("interaction_triton")
    for dtype in (torch.float32, torch.bfloat16):
        for _, overload, args in interaction.cases(8, 27, 128, dtype, "cpu"):
            problem = INTERACTION.problem(overload, args, {})
            for genome in interaction.SWEEP:
                impl.genome_space.validate(genome)
                backward = "backward" in problem.op
                refused = (dtype != torch.float32 and genome["fp32_precision"] in ("ieee", "tf32_split")
                           or backward and (genome["algorithm"] == "gather" or genome["fp32_precision"] == "tf32_split"))
                assert (impl.supports(problem, genome) is not None) == refused, (problem.op, dtype, genome)


def _tiny_tbe(monkeypatch) -> list:
    """The TBE microbenchmark's module with timing replaced (do_bench needs CUDA: each timed callable is called once,
    into the list returned) and genomes a tiny CPU problem takes (BLOCK_D 128 is refused)."""
    from benchmarks import microbench, tbe

    calls = []
    monkeypatch.setattr(microbench, "median_us", lambda fn: calls.append(fn()) or 1.0)
    monkeypatch.setattr(tbe, "FORWARD_SWEEP", [dict(tbe.FORWARD_SWEEP[1], BLOCK_D=16)])  # not the default genome
    monkeypatch.setattr(tbe, "BACKWARD_SWEEP", [dict(tbe.BACKWARD_SWEEP[1], BLOCK_D=16)])
    rows, sweep, runs = (tbe.VARIANTS[f"embedding_bags_backward_{name}"][1][1] for name in ("rows", "sweep", "runs"))
    monkeypatch.setattr(tbe, "VARIANTS", {
        "embedding_bags_backward_rows": ("rows", [dict(rows, BLOCK_D=16), rows]),
        "embedding_bags_backward_sweep": ("sweep", [dict(sweep, ROWS=4, UNROLL=2, BLOCK_D=16)]),
        "embedding_bags_backward_runs": ("runs", [dict(runs, BLOCK_D=16)]),
        "embedding_bags_backward_fill_runs": ("fill_runs", [dict(runs, BLOCK_D=16)])})
    return calls


@pytest.mark.parametrize("interleaved", [False, True])
def test_tbe_benchmark_checks_every_variant_on_cpu(monkeypatch, interleaved):
    """The TBE microbenchmark's variants (eager, Inductor, Triton sweep, rows, sweep, runs and fill-runs genomes,
    stacked decomposition) all pass its float64 check at a tiny size on CPU, with the gradients as separate tensors
    or as views of one [batch, tables, dim] tensor (then the runs and fill-runs genomes' stack forms too)."""
    from benchmarks import tbe

    calls = _tiny_tbe(monkeypatch)
    forward, backward = tbe.run(tables=3, rows=40, dim=16, batch=6, pooling=3, dtype=torch.float32, device="cpu",
                                interleaved=interleaved)
    assert forward["params"]["tables"] == 3 and forward["dims"]["indices"] == 3 * 6 * 3
    assert len(forward["sweep"]) == 2 and len(backward["sweep"]) == 2
    assert "stacked_decomposition_inductor_us" in backward and backward["bytes_moved"] > forward["bytes_moved"] / 10
    assert "rows_4_16_1_1_us" in backward and not any(k.startswith("rows_4_128") for k in backward)
    assert "sweep_4_2_16_4_1_us" in backward and "runs_8_16_16_2_1_us" in backward
    assert "fill_runs_8_16_16_2_1_us" in backward
    for form in ("runs_stack", "fill_runs_stack"):  # the stack forms read the one tensor in place
        assert (f"{form}_8_16_16_2_1_us" in backward) == interleaved
    assert len(calls) == 13 + 2 * interleaved


def test_tbe_benchmark_times_the_variants_asked_for(monkeypatch, capsys):
    """--variants runs: the backward row holds the runs genomes and no rows or sweep ones; an unknown name is
    refused before anything runs."""
    from benchmarks import tbe

    calls = _tiny_tbe(monkeypatch)
    forward, backward = tbe.run(tables=3, rows=40, dim=16, batch=6, pooling=3, dtype=torch.float32, device="cpu",
                                variants=["runs"])
    assert "runs_8_16_16_2_1_us" in backward and not any(k.startswith(("rows_", "sweep_")) for k in backward)
    assert len(calls) == 12 - 2  # the rows genome at BLOCK_D 16 and the sweep genome (rows at 128 is refused)
    with pytest.raises(SystemExit):
        tbe.main(["out.json", "--variants", "runs,scatter"])
    assert "unknown variants ['scatter']" in capsys.readouterr().err


def test_tbe_benchmark_skips_cleanly_without_cuda(tmp_path, capsys):
    from benchmarks import tbe

    assert tbe.main([str(tmp_path / "out.json")]) == 0
    assert "needs a CUDA device; skipped" in capsys.readouterr().out and not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("shared", [True, False])
def test_fm_interaction_benchmark_checks_every_variant_on_cpu(monkeypatch, shared):
    """The FM microbenchmark's variants (eager, Inductor, Triton default and sweep, gram decomposition under
    Inductor) all pass its float64 check at a tiny size on CPU (timing replaced: do_bench needs CUDA)."""
    from benchmarks import fm_interaction, microbench

    calls = []
    monkeypatch.setattr(microbench, "median_us", lambda fn: calls.append(fn()) or 1.0)
    monkeypatch.setattr(fm_interaction, "SWEEP", [dict(fm_interaction.SWEEP[3], BLOCK_D=16),  # not the default genome
                                                  dict(fm_interaction.SWEEP[4], BLOCK_D=16)])
    forward, backward = fm_interaction.run(batch=3, rows=5, dim=24, k=6, shared=shared, dtype=torch.float32,
                                           device="cpu")
    assert forward["params"] == {"shared": shared} and forward["dims"] == {"batch": 3, "rows": 5, "dim": 24, "k": 6}
    assert len(forward["sweep"]) == len(backward["sweep"]) == 3
    assert "gram_decomposition_inductor_us" in backward and backward["bytes_moved"] > forward["bytes_moved"]
    assert len(calls) == 2 * 6


def test_fm_interaction_benchmark_skips_cleanly_without_cuda(tmp_path, capsys):
    from benchmarks import fm_interaction

    assert fm_interaction.main([str(tmp_path / "out.json")]) == 0
    assert "needs a CUDA device; skipped" in capsys.readouterr().out and not (tmp_path / "out.json").exists()


def test_gemm_benchmark_checks_every_product_and_variant_on_cpu(monkeypatch):
    """The GEMM microbenchmark's products (forward, grad_input, grad_weight with autograd's layouts) and variants
    (eager, Inductor, Triton default and sweep) all pass its float64 check at a tiny size on CPU (timing replaced:
    do_bench needs CUDA)."""
    from benchmarks import gemm, microbench

    calls = []
    monkeypatch.setattr(microbench, "median_us", lambda fn: calls.append(fn()) or 1.0)
    small = dict(gemm.BASE, BLOCK_M=16, BLOCK_N=16, BLOCK_K=16, GROUP_M=1, num_warps=4, num_stages=2)
    rows = list(gemm.run(batch=64, products=gemm.PRODUCTS, dtype=torch.float32, layers=((13, 24), (24, 1)),
                         device="cpu", sweep=[dict(small, operands="as_is"), dict(small, SPLIT_K=2)],
                         input_layer=(13, 24)))
    assert [r["op"] for r in rows] == ["forward 13->24", "grad_weight 13->24", "forward 24->1", "grad_input 24->1",
                                       "grad_weight 24->1"]
    assert rows[1]["params"]["a_layout"] == "column" and rows[0]["params"]["b_layout"] == "column"
    assert rows[1]["dims"] == {"M": 24, "N": 13, "K": 64} and len(rows[1]["sweep"]) == 3  # K = 4 tiles: 2 splits
    assert all(r["triton_best_tflops"] > 0 and r["flops"] == 2 * r["dims"]["M"] * r["dims"]["N"] * r["dims"]["K"]
               for r in rows)
    assert all(r["presplit_us"] == r["b_parts_us"] == 1.0 for r in rows)  # the split kernels passed the check too
    assert all(r[f"{name}_rel_err"] < 1e-5 for r in rows
               for name in ("eager", "triton_default", "presplit", "b_parts"))
    only = list(gemm.run(batch=64, products=("grad_input",), dtype=torch.float32, layers=((24, 1),), device="cpu",
                         sweep=[], input_layer=(13, 24)))
    assert [r["op"] for r in only] == ["grad_input 24->1"] and len(only[0]["sweep"]) == 1


def test_gemm_benchmark_skips_cleanly_without_cuda(tmp_path, capsys):
    from benchmarks import gemm

    assert gemm.main([str(tmp_path / "out.json")]) == 0
    assert "needs a CUDA device; skipped" in capsys.readouterr().out and not (tmp_path / "out.json").exists()


def test_jagged_benchmark_sweeps_the_one_pass_gradient_of_max_against_the_two_pass_kernel(monkeypatch):
    """The jagged microbenchmark's rows on CPU (timing stubbed): the max gradient sweeps the one-pass kernel's
    genomes and times the two-pass kernel beside it, each checked against float64; the sum gradient sweeps the
    two-pass kernel's genomes and has no extra contender."""
    from benchmarks import jagged, microbench

    monkeypatch.setattr(microbench, "median_us", lambda fn: (fn(), 1.0)[1])
    rows = {label: (family, overload, args, kwargs)
            for label, family, overload, args, kwargs in jagged.cases(3, 5, 64, torch.float32, "cpu")}
    one_pass = jagged.measure("segment_reduce_backward max", *rows["segment_reduce_backward max"])
    assert all("RESIDENT_ROWS" in entry["genome"] and entry["rel_err"] < 1e-6 for entry in one_pass["sweep"])
    assert len(one_pass["sweep"]) > 1 and one_pass["two_pass_rel_err"] < 1e-6 and one_pass["two_pass_us"] == 1.0
    assert {entry["genome"]["LENGTHS_TO_ENDS"] for entry in one_pass["sweep"]} == {"cumsum", "block_scan", "block_sums"}
    assert {entry["genome"]["TAIL_FIX"] for entry in one_pass["sweep"]} == {"reread", "reread_rows"}
    two_pass = jagged.measure("segment_reduce_backward sum", *rows["segment_reduce_backward sum"])
    assert all("RESIDENT_ROWS" not in entry["genome"] for entry in two_pass["sweep"])
    assert not any(key.startswith("two_pass") for key in two_pass)


def test_segment_sweep_checks_and_times_each_supported_genome(monkeypatch):
    """The one-pass and row-tile gradients' sweep and the ends forward's on CPU (kernel timer stubbed): genomes the
    call refuses (BLOCK_D past the inner dim, a held tile past the registers) are left out; each other one is checked
    against float64."""
    from benchmarks import segment_sweep

    one_pass = (("RESIDENT_ROWS", (64, 128)), ("BLOCK_D", (32, 128)), ("num_warps", (4,)), ("TAIL_PASSES", (2, 1)),
                ("TAIL_FIX", ("reread",)), ("BLOCK_N", (32,)), ("num_stages", (1,)), ("LENGTHS_TO_ENDS", ("cumsum",)))
    rows = (("BLOCK_R", (8,)), ("BLOCK_D", (32, 128)), ("num_warps", (2,)), ("num_stages", (1,)))
    ends = (("BLOCK_N", (8,)), ("BLOCK_D", (32, 128)), ("num_warps", (2,)), ("num_stages", (1,)),
            ("LENGTHS_TO_ENDS", ("cumsum", "block_scan")))
    monkeypatch.setattr(segment_sweep, "SWEPT", {
        "segment_reduce_backward max": ((segment_sweep.ONE_PASS, one_pass), (segment_sweep.ROWS, rows)),
        "segment_reduce max": ((segment_sweep.ENDS, ends),)})
    result = segment_sweep.sweep(3, 5, 64, torch.float32, "cpu", timer=lambda fn: (fn(), 2.0)[1])
    assert [(r["implementation"], r["genome"].get("RESIDENT_ROWS"), r["genome"]["BLOCK_D"],
             r["genome"].get("TAIL_PASSES")) for r in result["sweep"]] == [
        ("segment_reduce_backward_one_pass", 64, 32, 2), ("segment_reduce_backward_one_pass", 64, 32, 1),
        ("segment_reduce_backward_one_pass", 128, 32, 2), ("segment_reduce_backward_one_pass", 128, 32, 1),
        ("segment_reduce_backward_rows", None, 32, None)]
    assert all(r["rel_err"] < 1e-6 and r["kernel_us"] == 2.0 for r in result["sweep"])
    assert result["sweep"][0]["fraction_of_copy"] == result["bytes_moved"] / 2e3 / result["copy_gbps"]
    assert result["dtype"] == "float32" and result["dims"]["inner"] == 64 and result["eager_kernel_us"] == 2.0
    forward = segment_sweep.sweep(3, 5, 64, torch.float32, "cpu", timer=lambda fn: (fn(), 2.0)[1],
                                  op="segment_reduce max")
    assert [(r["implementation"], r["genome"]["BLOCK_D"], r["genome"]["LENGTHS_TO_ENDS"]) for r in forward["sweep"]
            ] == [("segment_reduce_ends", 32, "cumsum"), ("segment_reduce_ends", 32, "block_scan")]
    assert forward["op"] == "segment_reduce max" and all(r["rel_err"] == 0.0 for r in forward["sweep"])


def test_segment_sweep_skips_cleanly_without_cuda(tmp_path, capsys):
    from benchmarks import segment_sweep

    assert segment_sweep.main([str(tmp_path / "out.json")]) == 0
    assert "needs a CUDA device; skipped" in capsys.readouterr().out and not (tmp_path / "out.json").exists()
