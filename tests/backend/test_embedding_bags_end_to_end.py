"""dlrm_small trained one step under backend="kevolve": its two sum tables become one kevolve::embedding_bags
call (its mean and max tables stay F.embedding_bag); unclaimed, the batched op is decomposed back to ATen; in
interpret mode the batched Triton forward and the stacked backward run; loss and gradients match eager.
dlrm_tiny (all sum tables) stacks its pooled rows behind the dense row as one kevolve::embedding_bags_stack call,
whose forms (the forward filling the stack, the runs backward reading its gradient in place) replace it where the
kernel planned for its inner call has one."""
import logging

import pytest

import torch_kevolve.warm as warm_module
from benchmarks.models.dlrm import dlrm_tiny, small_dlrm
from torch_kevolve.families import EMBEDDING_BAGS, EMBEDDING_BAGS_BACKWARD
from tests.backend.test_interaction_end_to_end import assert_matches_eager, train_step

FORWARD, BACKWARD = "kevolve.embedding_bags.default", "kevolve.embedding_bags_backward.default"


def test_unclaimed_bags_are_decomposed_back_to_aten(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG, logger="torch_kevolve"):
        want, got, model, twin, decisions = train_step({"shipped_cache": False}, tmp_path)
    assert_matches_eager(want, got, model, twin)
    seen = {(d.graph, d.op): d for d in decisions}
    assert not seen["forward", FORWARD].claimed and not seen["backward", BACKWARD].claimed
    assert seen["forward", FORWARD].problem.param("tables") == 2
    assert sum("decomposed back to ATen" in r.getMessage() and "embedding_bags" in r.getMessage()
               for r in caplog.records) == 2


def test_interpret_mode_runs_the_batched_and_stacked_kernels(tmp_path):
    options = {"interpret": True, "families": ["embedding_bags", "embedding_bags_backward"]}
    want, got, model, twin, decisions = train_step(options, tmp_path)
    assert_matches_eager(want, got, model, twin)
    claimed = {(d.graph, d.op): d.implementation for d in decisions if d.claimed}
    assert claimed == {("forward", FORWARD): "embedding_bags_triton",
                       ("backward", BACKWARD): "embedding_bags_backward_triton"}


def test_warm_sees_the_batched_keys(tmp_path):
    model, inputs = small_dlrm("cpu")
    options = {"cache_dir": str(tmp_path), "families": ["embedding_bags", "embedding_bags_backward"]}
    problems = warm_module.model_problems(model, inputs, options)
    assert sorted(p.op for _, p in problems.values()) == [FORWARD, BACKWARD]
    forward = next(p for _, p in problems.values() if p.op == FORWARD)
    assert (forward.param("tables"), forward.dim("rows"), forward.dim("dim")) == (2, 4000, 16)


STACK, STACK_BACKWARD = "kevolve.embedding_bags_stack.default", "kevolve.embedding_bags_stack_backward.default"


def test_interpret_mode_fills_dlrms_stack_with_the_forward_and_decomposes_the_backward_without_a_form(tmp_path):
    """dlrm_tiny's stack of the dense row and three pooled tables is one kevolve::embedding_bags_stack call: its
    forward genome (one bag per program) has the stack form; the backward's default kernel (segment) has none,
    so the stack's backward goes back to its meaning and the batched backward inside is claimed on its own."""
    options = {"interpret": True, "families": ["embedding_bags", "embedding_bags_backward"]}
    want, got, model, twin, decisions = train_step(options, tmp_path, factory=dlrm_tiny)
    assert_matches_eager(want, got, model, twin)
    seen = {(d.graph, d.op): d for d in decisions}
    assert seen["forward", STACK].claimed and seen["forward", STACK].implementation == "embedding_bags_triton"
    assert ("forward", FORWARD) not in seen  # filled by the stack form, never decomposed
    assert not seen["backward", STACK_BACKWARD].claimed
    assert "embedding_bags_backward_triton, has no form computing it" in seen["backward", STACK_BACKWARD].reason
    assert seen["backward", BACKWARD].implementation == "embedding_bags_backward_triton"


@pytest.mark.parametrize("implementation", ["embedding_bags_backward_runs", "embedding_bags_backward_fill_runs"])
def test_the_bag_tile_backwards_read_the_stacks_gradient_in_place(implementation, tmp_path, monkeypatch):
    """With the runs or fill-runs backward the kernel of the batched backward (its default here), the stack's
    backward is replaced by its form reading the gradient in place; loss and gradients still match eager, also with
    every kernel checked first (verify)."""
    runs = EMBEDDING_BAGS_BACKWARD.implementation(implementation)
    monkeypatch.setattr(EMBEDDING_BAGS_BACKWARD, "default_kernel",
                        lambda problem, abstraction, dynamic=False: (runs, runs.default_genome(problem)))
    options = {"interpret": True, "verify": True, "families": ["embedding_bags", "embedding_bags_backward"]}
    want, got, model, twin, decisions = train_step(options, tmp_path, factory=dlrm_tiny)
    assert_matches_eager(want, got, model, twin)
    claimed = {(d.graph, d.op): d.implementation for d in decisions if d.claimed}
    assert claimed == {("forward", STACK): "embedding_bags_triton",
                       ("backward", STACK_BACKWARD): implementation}


def test_a_forward_genome_without_the_stack_form_leaves_the_stack_to_its_meaning(tmp_path, monkeypatch):
    """A forward genome of two bags per program cannot fill the stack: the stack op goes back to its meaning and
    the batched forward inside it is claimed with that genome."""
    triton = EMBEDDING_BAGS.implementation("embedding_bags_triton")
    monkeypatch.setattr(EMBEDDING_BAGS, "default_kernel", lambda problem, abstraction, dynamic=False: (
        triton, {**triton.default_genome(problem), "BAGS_PER_PROGRAM": 2}))
    want, got, model, twin, decisions = train_step({"interpret": True, "families": ["embedding_bags"]}, tmp_path,
                                                   factory=dlrm_tiny)
    assert_matches_eager(want, got, model, twin)
    seen = {(d.graph, d.op): d for d in decisions}
    assert not seen["forward", STACK].claimed and "one bag per program" in seen["forward", STACK].reason
    assert seen["forward", FORWARD].claimed and seen["forward", FORWARD].genome["BAGS_PER_PROGRAM"] == 2


def test_the_passs_digest_covers_the_layout_forms_sources(monkeypatch):
    """Inductor reuses a compiled graph while KevolvePass's uuid stands: a change to a form's own code (not part of
    any implementation's hashed sources) must change it too."""
    from torch_kevolve.backend import graph_pass
    from torch_kevolve.families.embedding_bags import stack_backward, stack_forms, stack_forward

    hashed = []
    monkeypatch.setattr(graph_pass, "get_hash_for_files", lambda files: hashed.extend(files) or b"")
    graph_pass._code_digest.cache_clear()
    try:
        graph_pass._code_digest()
    finally:
        graph_pass._code_digest.cache_clear()
    assert {stack_forms.__file__, stack_forward.__file__, stack_backward.__file__} <= set(hashed)
