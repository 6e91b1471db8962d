"""The evolutionary search on a synthetic fitness landscape (no kernels run): policies, resume, termination,
the persisted graph's lineage, and the operator's diagnosis -> knowledge -> remedy mapping."""
import random

import pytest

from tests.evolve.landscape import H100, IMPL, OPTIMUM, PEAK, backward_problem, synthetic_evaluate
from torch_kevolve.evolve.diagnosis import (COMPILE_ERROR, COMPUTE_BOUND_FINDING, LAUNCH_OVERHEAD, LOW_BANDWIDTH_FINDING,
                                            NEAR_ROOFLINE_FINDING, OUT_OF_SHARED_MEMORY, SPILLS, Diagnosis, diagnose)
from torch_kevolve.evolve.evaluation import EvaluationResult, Status
from torch_kevolve.evolve.knowledge import KnowledgeBase
from torch_kevolve.evolve.operator import OperatorContext, UniversalOperator
from torch_kevolve.evolve.search import Search, SearchConfig, key_digest
from torch_kevolve.evolve.search_graph import SearchGraph
from torch_kevolve.evolve.termination import Termination
from torch_kevolve.families import EMBEDDING_BAG_BACKWARD


def run_search(tmp_path, policy, budget, calls=None, seed=0, **termination):
    calls = [] if calls is None else calls
    graph = SearchGraph(tmp_path / "search.sqlite")
    config = SearchConfig(policy=policy, seed=seed,
                          termination=Termination(max_evaluations=budget, roofline=None, **termination))
    search = Search(EMBEDDING_BAG_BACKWARD, backward_problem(), [IMPL], synthetic_evaluate(calls), graph, H100, config)
    return search, search.run(), graph


@pytest.mark.parametrize("policy", ["greedy", "uct", "islands"])
def test_each_policy_finds_the_known_optimum(tmp_path, policy):
    space = len(IMPL.genomes(backward_problem()))
    search, outcome, graph = run_search(tmp_path, policy, budget=250)
    assert outcome.best.genome == OPTIMUM and outcome.best.fitness == pytest.approx(PEAK)
    assert outcome.evaluations <= 250 < space
    genomes = [(n.implementation, str(sorted(n.genome.items()))) for n in graph.nodes(search.id)]
    assert len(genomes) == len(set(genomes))  # never evaluates a genome twice


def test_a_killed_search_resumes_where_it_stopped(tmp_path):
    calls = []
    search, first, graph = run_search(tmp_path, "uct", budget=20, calls=calls)
    assert first.evaluations == first.new_evaluations == 20
    graph.close()
    search, second, graph = run_search(tmp_path, "uct", budget=45, calls=calls)
    assert second.evaluations == 45 and second.new_evaluations == 25
    assert len(calls) == 45 and len({str(sorted(c.genome.items())) for c in calls}) == 45
    assert second.best.fitness >= first.best.fitness


def test_lineage_and_trajectory_come_from_the_graph(tmp_path):
    search, outcome, graph = run_search(tmp_path, "greedy", budget=30)
    nodes = graph.nodes(search.id)
    children = graph.children(search.id)
    child = next(n for n in nodes if graph.lineage(n.id) and any(n.id in k for k in children.values()))
    ancestors = graph.lineage(child.id)
    assert all(a.id < child.id for a, _ in ancestors)
    assert not graph.lineage(ancestors[-1][0].id)  # the lineage ends at a draft
    trajectory = graph.trajectory(search.id)
    assert [t[0] for t in trajectory] == list(range(1, 31))
    assert trajectory[-1][2] == pytest.approx(outcome.best.fitness)
    assert all(b1 <= b2 for (_, _, b1), (_, _, b2) in zip(trajectory, trajectory[1:]))


@pytest.mark.parametrize("rule,expected", [
    (dict(target_fitness=2.0), "target fitness"),
    (dict(plateau=3), "plateau"),
    (dict(wall_seconds=0.0), "wall-clock"),
])
def test_termination_rules_fire(tmp_path, rule, expected):
    search, outcome, _ = run_search(tmp_path, "islands", budget=500, **rule)
    assert expected in outcome.reason and outcome.evaluations < 500


def test_roofline_rule_fires(tmp_path):
    graph = SearchGraph(tmp_path / "search.sqlite")
    config = SearchConfig(policy="greedy", termination=Termination(max_evaluations=500, roofline=0.5))
    outcome = Search(EMBEDDING_BAG_BACKWARD, backward_problem(), [IMPL], synthetic_evaluate([]), graph, H100,
                     config).run()
    assert "copy ceiling" in outcome.reason and outcome.best.result.achieved_gbps >= 1500.0


def test_record_of_the_winner(tmp_path):
    search, outcome, _ = run_search(tmp_path, "greedy", budget=12)
    record = search.record(outcome)
    assert record.genome == outcome.best.genome and record.fitness == pytest.approx(outcome.best.fitness)
    assert record.stats["evaluated"] == 12 and record.stats["method"] == "evolve (greedy)"


def node_with(result, genome=None, tmp_path=None):
    graph = SearchGraph(tmp_path / "one.sqlite")
    return graph.add("s", IMPL.name, "triton", genome or dict(OPTIMUM, BLOCK_D=128, num_stages=3), "sha", result)


@pytest.mark.parametrize("result,entry,moved", [
    (EvaluationResult(Status.COMPILE_ERROR, "out of resource: shared memory, Required: 262144"), "Out of shared memory",
     {"num_stages", "BLOCK_D", "BLOCK_N"}),
    (EvaluationResult(Status.OK, fitness=1.2, t_cand_us=80.0, kernels=[{"n_spills": 12}]), "Register spills",
     {"BLOCK_D", "BLOCK_N", "num_stages", "num_warps"}),
    (EvaluationResult(Status.OK, fitness=1.1, t_cand_us=90.0, achieved_gbps=600.0, ceiling_gbps=3000.0),
     "Memory-bound kernel far below the copy ceiling", {"BLOCK_N", "ITEMS_PER_PROGRAM", "num_stages", "num_warps"}),
    (EvaluationResult(Status.PARTIAL_WRITE, "3 elements still hold the poison"), "Wrong results, crashes or timeouts",
     {"BLOCK_N", "BLOCK_D", "algorithm"}),
])
def test_the_operator_maps_diagnoses_to_knowledge_entries(tmp_path, result, entry, moved):
    parent = node_with(result, tmp_path=tmp_path)
    context = OperatorContext((parent,), (), IMPL, backward_problem(), "sm_90", lambda impl, genome: False)
    proposal = UniversalOperator(explore=0.0).propose(context, random.Random(1))
    assert entry in proposal.transformation
    changed = {k for k in parent.genome if proposal.genome[k] != parent.genome[k]}
    assert len(changed) == 1 and changed <= moved


def test_the_knowledge_base_parses_every_entry_and_its_index_is_fresh():
    kb = KnowledgeBase()
    assert len(kb.entries) >= 6 and all(e.remedies for e in kb.entries)
    assert kb.index is not None, "run `kevolve index build-knowledge` after editing torch_kevolve/knowledge/"
    assert kb.retrieve(Diagnosis((), "")) == []


@pytest.mark.parametrize("findings,first", [
    ((SPILLS,), "register_spills"), ((COMPILE_ERROR, OUT_OF_SHARED_MEMORY), "shared_memory"),
    ((LOW_BANDWIDTH_FINDING,), "low_bandwidth"), ((LAUNCH_OVERHEAD,), "launch_overhead"),
    (("timeout",), "wrong_or_crash"), ((NEAR_ROOFLINE_FINDING,), "near_roofline"),
    ((COMPUTE_BOUND_FINDING,), "compute_bound"),
])
def test_vector_and_keyword_retrieval_agree_on_the_first_entry(findings, first):
    kb = KnowledgeBase()
    diagnosis = Diagnosis(findings, "; ".join(findings))
    assert kb.retrieve(diagnosis)[0].name == first
    assert kb.match_keywords(diagnosis.text)[0].name == first


def test_an_edited_symptom_makes_the_index_stale_and_retrieval_falls_back_to_keywords(tmp_path, caplog):
    import shutil

    from torch_kevolve.evolve.knowledge import KNOWLEDGE_DIR

    for path in KNOWLEDGE_DIR.glob("*.md"):
        shutil.copy(path, tmp_path / path.name)
    edited = tmp_path / "register_spills.md"
    edited.write_text(edited.read_text() + "\nOne more sentence.\n")
    assert KnowledgeBase(tmp_path).index is not None  # prose is for people: the index embeds title and symptoms
    edited.write_text(edited.read_text().replace("symptoms: ", "symptoms: local memory traffic, "))
    kb = KnowledgeBase(tmp_path)
    with caplog.at_level("INFO", logger="torch_kevolve"):
        assert kb.index is None
    assert "stale for the knowledge entries ['register_spills']" in caplog.text
    assert kb.retrieve(Diagnosis((SPILLS,), SPILLS))[0].name == "register_spills"


@pytest.mark.parametrize("policy", ["greedy", "uct", "islands"])
def test_a_one_genome_space_ends_the_search_after_one_evaluation(tmp_path, policy):
    """A decomposition with no genes (one genome) is drafted once; then nothing is left to propose, and the
    search ends as exhausted rather than failing in the operator."""
    from torch_kevolve.families import EMBEDDING_BAGS
    from torch_kevolve.families.embedding_bags.calls import FORWARD

    decomposition = EMBEDDING_BAGS.implementation("embedding_bags_decomposition")
    problem = EMBEDDING_BAGS.example_problems(FORWARD)[0]
    calls = []

    def evaluate(candidate):
        calls.append(candidate)
        return EvaluationResult(Status.OK, fitness=1.2)

    graph = SearchGraph(tmp_path / "search.sqlite")
    config = SearchConfig(policy=policy, termination=Termination(max_evaluations=10, roofline=None))
    outcome = Search(EMBEDDING_BAGS, problem, [decomposition], evaluate, graph, H100, config).run()
    assert len(calls) == 1 and outcome.evaluations == 1 and "exhausted" in outcome.reason


def test_the_first_draft_is_the_default_genome_adapted_to_the_problem(tmp_path):
    """Where the space's default does not fit the problem (BLOCK_D=128 on rows of 32), the search starts from the
    supporting genome that changes the fewest of its genes, not from a random one."""
    import torch

    grad, indices, offsets = torch.zeros(8, 32), torch.zeros(24, dtype=torch.int64), torch.arange(0, 24, 3)
    args = (grad, indices, offsets, indices, offsets, torch.zeros(8, dtype=torch.int64), 64, False, 0, False, None, -1)
    problem = EMBEDDING_BAG_BACKWARD.problem(torch.ops.aten._embedding_bag_backward.default, args, {})
    assert IMPL.supports(problem, IMPL.genome_space.default()) is not None
    calls = []
    config = SearchConfig(policy="greedy", termination=Termination(max_evaluations=1, roofline=None))
    Search(EMBEDDING_BAG_BACKWARD, problem, [IMPL], synthetic_evaluate(calls), SearchGraph(tmp_path / "s.sqlite"), H100,
           config).run()
    assert [c.genome for c in calls] == [dict(IMPL.genome_space.default(), BLOCK_D=32)]


@pytest.mark.parametrize("measures,finding", [
    (dict(achieved_gbps=100.0, ceiling_gbps=3000.0, achieved_tflops=30.0, ceiling_tflops=50.0), COMPUTE_BOUND_FINDING),
    (dict(achieved_gbps=100.0, ceiling_gbps=3000.0, achieved_tflops=48.0, ceiling_tflops=50.0), NEAR_ROOFLINE_FINDING),
    (dict(achieved_gbps=600.0, ceiling_gbps=3000.0, achieved_tflops=1.0, ceiling_tflops=50.0), LOW_BANDWIDTH_FINDING),
    (dict(achieved_gbps=600.0, ceiling_gbps=3000.0), LOW_BANDWIDTH_FINDING),
])
def test_a_kernel_is_diagnosed_against_its_nearer_roof(measures, finding):
    """A matrix product nearer the matmul ceiling than the copy ceiling is compute-bound (or near that roof)."""
    diagnosis = diagnose(EvaluationResult(Status.OK, fitness=1.0, t_cand_us=100.0, **measures))
    assert diagnosis.findings == (finding,)


def test_seeds_outside_the_genome_space_are_dropped(tmp_path):
    """A seed from an older genome space (a gene missing, or a value no longer offered) is never proposed."""
    calls = []
    missing = {k: v for k, v in OPTIMUM.items() if k != "num_stages"}
    config = SearchConfig(policy="greedy", termination=Termination(max_evaluations=3, roofline=None))
    search = Search(EMBEDDING_BAG_BACKWARD, backward_problem(), [IMPL], synthetic_evaluate(calls),
                    SearchGraph(tmp_path / "s.sqlite"), H100, config,
                    seeds=[(IMPL.name, missing), (IMPL.name, dict(OPTIMUM, BLOCK_D=3)), (IMPL.name, OPTIMUM)])
    search.run()
    assert search.seeds == [(IMPL.name, OPTIMUM)] and calls[0].genome == OPTIMUM
    assert all(set(c.genome) == set(OPTIMUM) for c in calls)


def test_nodes_timed_on_other_kernel_sources_start_a_new_search(tmp_path, monkeypatch):
    """The graph names a search by its key and the kernels' sources: after a source change the earlier nodes
    (timings of other code) are neither resumed nor reported as the best."""
    search, first, graph = run_search(tmp_path, "greedy", budget=5)
    graph.close()
    monkeypatch.setattr(type(IMPL), "source_sha256", lambda self: "0" * 64)
    again, second, graph = run_search(tmp_path, "greedy", budget=5)
    assert again.id != search.id and key_digest(again.id) == key_digest(search.id) == search.key.digest
    assert second.new_evaluations == second.evaluations == 5
    assert {n.id for n in graph.nodes(again.id)}.isdisjoint(n.id for n in graph.nodes(search.id))
