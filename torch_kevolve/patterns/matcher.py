"""The pre-grad pattern pass: finds multi-node patterns in a Dynamo FX graph (torch-level IR) and replaces
each by its pattern op, so that AOTAutograd traces the op (and its backward op) instead of the pattern. (An
F.embedding call becomes kevolve::embedding for its backward op alone: see that op.)

The patterns themselves live by kind (interaction_patterns, lookup_patterns, linear_patterns; their pieces in
matching); this module holds the list offered and the pass over a graph.
"""
from __future__ import annotations

from typing import Sequence

from torch.fx import GraphModule

from .interaction_patterns import FM_INTERACTION, PAIRWISE_DOTS
from .linear_patterns import BROADCAST_TARGET_LINEAR, SCORE_HEAD
from .lookup_patterns import EMBEDDING, EMBEDDING_BAGS, EMBEDDING_BAGS_STACK
from .matching import Pattern

PATTERNS: tuple[Pattern, ...] = (PAIRWISE_DOTS, EMBEDDING_BAGS, EMBEDDING_BAGS_STACK, FM_INTERACTION, EMBEDDING,
                                 BROADCAST_TARGET_LINEAR, SCORE_HEAD)


def rewrite_patterns(gm: GraphModule, patterns: Sequence[Pattern] = PATTERNS) -> list[str]:
    """Replace every match of `patterns` in `gm` (in place, recompiled); the names of the patterns replaced,
    one per match, in graph order."""
    graph = gm.graph
    replaced = []
    for node in list(graph.nodes):
        if node.graph is not graph or getattr(node, "_erased", False):  # taken by an earlier match
            continue
        for pattern in patterns:
            match = pattern.match(node)
            if match is None:
                continue
            with graph.inserting_before(match.root):
                new = pattern.replace(graph, match)
            match.root.replace_all_uses_with(new)
            for old in match.nodes:
                if not old.users:
                    graph.erase_node(old)
            replaced.append(pattern.name)
            break
    if replaced:
        graph.lint()
        gm.recompile()
    return replaced
