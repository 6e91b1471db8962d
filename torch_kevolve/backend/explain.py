"""Run a model once under the kevolve backend and return what the pass decided for every ATen node."""
from __future__ import annotations

import torch

from .decisions import NodeDecision, collect_decisions


def run_step(compiled, inputs: tuple) -> None:
    """The model's step as kevolve measures it: forward, and backward of the output's sum when it needs grad."""
    out = compiled(*inputs)
    if isinstance(out, torch.Tensor) and out.requires_grad:
        out.sum().backward()


def explain(model: torch.nn.Module, inputs: tuple, options: dict | None = None) -> list[NodeDecision]:
    """Compile `model` with backend="kevolve", run forward (and backward when the result needs grad).

    Decisions come in graph order.
    """
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="kevolve", options=options or {})
    with collect_decisions() as decisions:
        run_step(compiled, inputs)
    torch._dynamo.reset()
    return decisions
