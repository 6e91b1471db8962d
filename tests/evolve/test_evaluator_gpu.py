"""The evaluator on a CUDA device: the planted cheats (the out-of-bounds read is an illegal memory access
that kills only its worker) and correct candidates with a positive fitness. Skipped without a GPU."""
import pytest
import torch

from benchmarks.evaluator_gpu import LOOP_TIMEOUT_S, TIMED_PROBLEM, TRITON_PROBLEM, embedding_bag_problem
from tests.evolve.planted import EXPECTED_CUDA, evaluate_planted
from torch_kevolve.evolve.evaluation import Candidate, Status, family_spec
from torch_kevolve.evolve.evaluator import Evaluator, EvaluatorConfig
from torch_kevolve.families import EMBEDDING_BAG

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CONFIG = EvaluatorConfig(device="cuda")


def test_planted_candidates_on_cuda():
    table = evaluate_planted(CONFIG, TRITON_PROBLEM, TIMED_PROBLEM, LOOP_TIMEOUT_S)
    assert {name: row["result"].status.value for name, row in table.items()} == EXPECTED_CUDA
    correct = table["row_sum_triton"]["result"]
    assert correct.fitness > 0 and correct.kernels and correct.kernels[0]["n_regs"] > 0
    assert "illegal memory access" in table["out_of_bounds"]["result"].error


def test_a_correct_embedding_bag_kernel_has_a_positive_fitness():
    impl = EMBEDDING_BAG.implementation("embedding_bag_triton")
    problem = embedding_bag_problem()
    with Evaluator(CONFIG) as evaluator:
        result = evaluator.evaluate(Candidate(family_spec(EMBEDDING_BAG), impl.name, impl.genome_space.default(), problem))
    assert result.status is Status.OK, result.error
    assert result.fitness > 0 and result.achieved_gbps < result.ceiling_gbps * 1.1
