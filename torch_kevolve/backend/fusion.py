"""What running a node apart from Inductor's fusion costs. A family whose ops Inductor lowers to its own fusible
code (`KernelFamily.inductor_fuses`) has its cached winner measured alone, against Inductor's kernel of the op
alone; inside a graph Inductor would also fuse the op with its pointwise neighbours, so that the op's output
(read by a pointwise user, or by a cat, into whose output Inductor writes it in place) and its inputs (written by a
pointwise producer) never reach memory. Running our kernel instead sends those bytes through memory once more each
way. A winner is swapped in only where the time it saves alone exceeds what moving those bytes costs at
Inductor's own rate on the op (the family's roofline bytes over the reference time), so never where they outweigh
the op's own bytes. The rule is in shares of the op's time, so it holds for a record transferred from a
neighbouring key too."""
from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch.fx import Node

from ..cache import KernelRecord
from ..families.base import KernelFamily
from ..families.symbolic_sizes import size_hint
from ..key import Problem


def _is_view(node: Node) -> bool:
    return isinstance(node.target, torch._ops.OpOverload) and node.target.is_view


def _is_pointwise(node: Node) -> bool:
    """Whether Inductor fuses `node` into a neighbour's kernel (an ATen op tagged pointwise)."""
    return (node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload)
            and torch.Tag.pointwise in node.target.tags)


def _fuses_its_input(node: Node) -> bool:
    """Whether Inductor computes a fusible producer of `node`'s input inside `node`'s own kernel: a pointwise op,
    or a cat (which has the producer write its slice of the output; a kernel of ours needs a copy there)."""
    return _is_pointwise(node) or node.op == "call_function" and node.target is torch.ops.aten.cat.default


def _users(node: Node) -> Iterator[Node]:
    """The nodes reading `node`'s value, through views of it."""
    for user in node.users:
        yield from (_users(user) if _is_view(user) else (user,))


def _producer(node: Node) -> Node:
    """The node whose value `node` is, through views."""
    while _is_view(node) and node.args and isinstance(node.args[0], Node):
        node = node.args[0]
    return node


def _tensor_bytes(node: Node) -> int:
    value = node.meta.get("val")
    return size_hint(value.numel()) * value.element_size() if isinstance(value, torch.Tensor) else 0


def unfused_bytes(node: Node, args: Sequence | None = None) -> int:
    """Bytes that go through memory only because `node` runs apart (each written once and read once more): its
    output where a pointwise op or a cat reads it, each tensor argument (of `args`, the kernel's, default the
    node's own) a pointwise op produced."""
    out = 2 * _tensor_bytes(node) if any(_fuses_its_input(user) for user in _users(node)) else 0
    inputs = {_producer(a) for a in (node.args if args is None else args) if isinstance(a, Node)}
    return out + sum(2 * _tensor_bytes(p) for p in inputs if _is_pointwise(p))


def refusal(record: KernelRecord, family: KernelFamily, problem: Problem, node: Node,
            args: Sequence | None = None) -> str | None:
    """Why the winner `record` must not replace `node` by a kernel on `args` (default: the node's own; None if
    it may): the share of Inductor's time on the op alone that it saves, 1 - 1/fitness, does not pay for the
    bytes running apart adds, as a share of the op's own (moved at Inductor's rate on the op, they cost that
    share of its time)."""
    extra = unfused_bytes(node, args) if family.inductor_fuses else 0
    if extra == 0:
        return None
    saved, cost = 1 - 1 / record.fitness, extra / max(family.bytes_moved(problem), 1)
    if saved > cost:
        return None
    return (f"Inductor fuses it with its pointwise neighbours (or writes it into a cat): the winner saves "
            f"{saved:.0%} of Inductor's time on the op alone, running it apart moves {extra / 1e6:.2f} MB more, "
            f"{cost:.0%} of the op's own bytes")
