"""The pieces every pre-grad pattern is made of: a Pattern (data: `match(node)` recognises the pattern ending at
`node`, exact structure only; `replace(graph, match)` inserts the call computing the same value), the Match it
finds, and the helpers that read Dynamo's FX graphs (example values, calls by function or method, bound arguments)
and insert calls into them.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Callable

import torch
import torch.utils._pytree as pytree
from torch.fx import Graph, Node

COPIED_META = ("stack_trace", "nn_module_stack", "source_fn_stack")


@dataclass(frozen=True)
class Match:
    """A found pattern: `root` is the node whose value the replacement takes over; `nodes` are the
    pattern's nodes, erased (root first) once nothing else uses them; `bindings` feed `replace`."""

    root: Node
    nodes: tuple[Node, ...]
    bindings: dict


@dataclass(frozen=True)
class Pattern:
    """One multi-node pattern and the pattern op replacing it."""

    name: str
    match: Callable[[Node], Match | None]
    replace: Callable[[Graph, Match], Node]


def value_of(arg):
    """The example value Dynamo recorded for a node (other arguments as they are)."""
    return arg.meta.get("example_value") if isinstance(arg, Node) else arg


def insert_call(graph: Graph, op: str, target, args: tuple, like: Node) -> Node:
    """A new node `target(*args)` (op: call_function or call_method) with its example value computed on
    the fake values of its arguments and `like`'s source metadata."""
    node = graph.create_node(op, target, args)
    values = [[value_of(v) for v in a] if isinstance(a, list) else value_of(a) for a in args]
    with next(v for v in pytree.tree_leaves(values) if isinstance(v, torch.Tensor)).fake_mode:
        node.meta["example_value"] = target(*values) if op == "call_function" else getattr(values[0], target)(*values[1:])
    node.meta.update({k: like.meta[k] for k in COPIED_META if k in like.meta})
    return node


def is_call(node, function, method: str) -> bool:
    """Whether `node` calls `function` (call_function) or the tensor method named `method` (call_method)."""
    return isinstance(node, Node) and (node.op == "call_function" and node.target is function
                                       or node.op == "call_method" and node.target == method)


@functools.cache
def _signature(function) -> inspect.Signature:
    """`function`'s signature, built once per function."""
    return inspect.signature(function)


def call_arguments(node: Node, function) -> dict | None:
    """The arguments of a call of `function` at `node` by parameter name, defaults filled in; None where `node`
    is no such call or its arguments do not bind."""
    if not (node.op == "call_function" and node.target is function):
        return None
    try:
        bound = _signature(function).bind(*node.args, **node.kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(bound.arguments)
