"""`kevolve warm` (evolutionary) and `kevolve evolve` on CPU: they search, fill the cache and the search
graph, and refuse bad input clearly; `kevolve report` plots what they left; shape specs."""
import pytest
import torch

from torch_kevolve.cache import UserStore
from torch_kevolve.cli import main, parse_budget
from torch_kevolve.evolve.search import key_digest
from torch_kevolve.evolve.search_graph import SearchGraph
from torch_kevolve.evolve.shape_spec import apply_spec
from torch_kevolve.families import EMBEDDING_BAG

EMBEDDING_ONLY = '{"families": ["embedding_bag", "embedding_bag_backward"]}'


def test_warm_evolves_every_key_of_a_model_and_fills_the_cache(tmp_path, capsys):
    assert main(["warm", "tests.evolve.tiny_dlrm:factory", "--device", "cpu", "--cache-dir", str(tmp_path),
                 "--evaluations", "2", "--policy", "greedy", "--budget", "10m", "--options", EMBEDDING_ONLY]) == 0
    out = capsys.readouterr().out
    records = UserStore(tmp_path).records()
    assert {r.key.family for r in records} == {"embedding_bag", "embedding_bag_backward"}
    assert all(r.stats["method"] == "evolve (greedy)" and r.implementation.endswith("decomposition") for r in records)
    graph = SearchGraph(tmp_path / "search.sqlite")
    assert sorted(key_digest(s) for s in graph.searches()) == sorted(r.key.digest for r in records)
    assert "reference us" in out and "[2/2] evolving" in out
    assert main(["warm", "tests.evolve.tiny_dlrm:factory", "--device", "cpu", "--cache-dir", str(tmp_path),
                 "--options", EMBEDDING_ONLY]) == 0
    assert capsys.readouterr().out.count("already tuned") == 2
    assert main(["report", "--cache-dir", str(tmp_path), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "trajectories.png").stat().st_size > 1000
    assert (tmp_path / "report" / "report.json").exists()


def test_evolve_one_operator_from_a_shape_spec(tmp_path, capsys):
    assert main(["evolve", "--op", "aten._embedding_bag.default", "--device", "cpu", "--cache-dir", str(tmp_path),
                 "--shape-spec", "num_weights=300,dim=8,num_indices=40,num_bags=10,mode=1", "--evaluations", "2"]) == 0
    (record,) = UserStore(tmp_path).records()
    assert dict(record.key.params)["mode"] == 1 and dict(record.key.shape)["num_weights"] == 512


@pytest.mark.parametrize("argv,message", [
    (["--op", "aten.not_an_op.default"], "no kevolve family implements"),
    (["--op", "aten._embedding_bag.default", "--shape-spec", "rows=5"], "has no 'rows'"),
    (["--op", "aten._embedding_bag.default", "--shape-spec", "dim=x"], "expected an integer"),
])
def test_evolve_refuses_bad_input(tmp_path, capsys, argv, message):
    assert main(["evolve", "--device", "cpu", "--cache-dir", str(tmp_path)] + argv) == 2
    assert message in capsys.readouterr().err


def test_shape_spec_edits_dims_params_and_dtypes():
    template = EMBEDDING_BAG.example_problems(torch.ops.aten._embedding_bag.default)[0]
    problem = apply_spec(template, "num_bags=99, weight=bfloat16, per_sample_weights=true, padding_idx=-1")
    assert problem.dim("num_bags") == 99 and problem.dtype("weight") == torch.bfloat16
    assert problem.param("per_sample_weights") is True and problem.param("padding_idx") == -1
    with pytest.raises(ValueError, match="not a torch dtype"):
        apply_spec(template, "weight=float33")
    with pytest.raises(ValueError, match="true or false"):
        apply_spec(template, "per_sample_weights=maybe")


def test_budgets():
    assert parse_budget("90s") == 90 and parse_budget("5m") == 300 and parse_budget("1.5h") == 5400
    assert parse_budget("12") == 12
