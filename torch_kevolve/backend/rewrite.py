"""Replace one node of a post-grad ATen graph by the traced graph of a callable with the same contract."""
from __future__ import annotations

import itertools
import operator
from typing import Callable, Sequence

import torch
import torch.utils._pytree as pytree
from torch._guards import detect_fake_mode
from torch._inductor.pattern_matcher import fwd_only
from torch.fx import Graph, Node

from ..families.schema import schema_values


def positional_args(node: Node) -> list:
    """The node's arguments as a full positional list in schema order (kwargs, kwarg-only arguments
    and schema defaults filled in)."""
    return schema_values(node.target, node.args, node.kwargs)


def example_values(args: Sequence) -> list:
    """Replace every Node in `args` (lists of them too, such as Tensor[] arguments) by its fake value (meta['val'])."""
    return [torch.fx.map_arg(a, lambda n: n.meta["val"]) for a in args]


def adopt_constant(graph: Graph, value: torch.Tensor) -> str:
    """Hold `value` (a tensor constant of a traced callable, e.g. from torch.tensor) on the graph's module under
    a fresh name, which a get_attr node of the graph can then reference (a non-persistent buffer: FX warns on a
    get_attr of a plain tensor attribute)."""
    module = graph.owning_module
    if module is None:
        raise ValueError("cannot splice a tensor constant into a graph that no module owns")
    name = next(n for n in (f"_kevolve_constant{i}" for i in itertools.count()) if not hasattr(module, n))
    module.register_buffer(name, value, persistent=False)
    return name


def replace_node(graph: Graph, node: Node, fn: Callable, args: Sequence) -> None:
    """Trace `fn(*args)` on the node's fake values and splice the result in place of `node`.

    `fn` must return what node.target returns (a tensor or a tuple of tensors). When the splice fails, the
    graph is left unchanged and the error raised.
    """
    for user in node.users:
        if isinstance(node.meta.get("val"), (tuple, list)) and user.target is not operator.getitem:
            raise ValueError(f"cannot replace {node.name}: tuple output used by {user.format_node()}")
    leaves, spec = pytree.tree_flatten(list(args))
    values = [a.meta["val"] if isinstance(a, Node) else a for a in leaves]
    node_positions = [i for i, a in enumerate(leaves) if isinstance(a, Node)]

    def on_tensors(*tensors):
        full = list(values)
        for i, t in zip(node_positions, tensors):
            full[i] = t
        return fn(*pytree.tree_unflatten(full, spec))

    tensors = [values[i] for i in node_positions]
    fake_mode = detect_fake_mode(tensors)
    with fake_mode:
        # No dead-code elimination: a Triton kernel's mutation of the outputs it fills has no users.
        traced = fwd_only(on_tensors, tensors, run_functional_passes=False)

    env: dict[Node, Node] = {}
    inserted: list[Node] = []
    placeholders = iter(leaves[i] for i in node_positions)
    try:
        with graph.inserting_before(node):
            for t in traced.graph.nodes:
                if t.op == "placeholder":
                    env[t] = next(placeholders)
                elif t.op == "output":
                    result = t.args[0]
                elif t.op == "get_attr":
                    env[t] = graph.get_attr(adopt_constant(graph, getattr(traced, t.target)))
                    env[t].meta.update(t.meta)
                    inserted.append(env[t])
                else:
                    env[t] = graph.node_copy(t, lambda x: env[x])
                    inserted.append(env[t])
    except Exception:
        for n in reversed(inserted):  # nothing uses them yet: the graph is left as it was
            graph.erase_node(n)
        raise
    outputs = torch.fx.map_arg(result, lambda x: env[x])
    if isinstance(outputs, (tuple, list)):
        for user in list(node.users):
            user.replace_all_uses_with(outputs[user.args[1]])
            graph.erase_node(user)
    else:
        node.replace_all_uses_with(outputs)
    graph.erase_node(node)
