"""KevolvePass: Inductor's post-grad custom pass that swaps cache-approved kernels into ATen graphs."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import logging
from dataclasses import dataclass
from typing import Callable, TypeVar

import torch
from torch._inductor.custom_graph_pass import CustomGraphPass, get_hash_for_files
from torch._subclasses.fake_tensor import unset_fake_temporarily
from torch.fx import Graph, Node

from ..cache.dispatch import Choice, Dispatcher
from ..families import FAMILIES, LAYOUT_FORMS, family_for
from ..families.base import Abstraction, Implementation, KernelFamily, Unsupported
from ..families.checking import check_kernel
from ..families.symbolic_sizes import is_symbolic
from ..key import DeviceInfo, OpKey, Problem
from ..patterns import INNER_CALLS, STANDS_FOR, epilogues, gradient_sums, is_pattern_op, meaning
from ..patterns import meanings as pattern_meanings
from ..patterns import ops as pattern_ops
from . import decisions, fusion, rewrite, size_hints
from .options import KevolveOptions
from .transfer import NeighbourTransfer

log = logging.getLogger("torch_kevolve")
T = TypeVar("T")


@dataclass(frozen=True)
class _Plan:
    family: KernelFamily
    problem: Problem
    key: OpKey
    implementation: Implementation
    genome: dict
    reason: str
    transferred: bool = False


@functools.cache
def _code_digest() -> str:
    """A digest of this pass's code and every family's version and kernel sources (and their layout forms'), as
    this process loaded them (computed once: each compile asks for the pass's uuid)."""
    h = hashlib.sha256()
    forms = sorted({m for form in LAYOUT_FORMS.values() for m in form.source_modules})
    h.update(get_hash_for_files((__file__, rewrite.__file__, fusion.__file__, pattern_meanings.__file__,
                                 pattern_ops.__file__, epilogues.__file__,
                                 *(importlib.import_module(m).__file__ for m in forms))))
    for family in FAMILIES:
        h.update(f"{family.name}:{family.version}:{family.inductor_fuses}".encode())
        for impl in family.implementations:
            h.update(impl.source_sha256().encode())
    return h.hexdigest()


class KevolvePass(CustomGraphPass):
    """Visit every ATen node; replace it by our kernel only where the cache says ours is faster (or, with
    `transfer`, where a near solved key's winner passes the correctness check on this key).

    A pattern op (torch_kevolve.patterns) that no kernel replaces is decomposed back to its ATen pattern; one that
    stands for an ATen overload (STANDS_FOR) is offered to the families as that overload; a layout op
    (INNER_CALLS) is offered as its inner call, and replaced where the inner call's winner has a form computing
    the layout op (LAYOUT_FORMS).
    With options.patterns, a sum of two embedding gradients of one table becomes one backward over both lookups
    (patterns.gradient_sums) before anything is visited, and epilogue patterns (patterns.epilogues: a product or a
    search and the ops after it) are offered to the cache first, as one call; where none is approved their nodes
    stay, each visited on its own (or, for an epilogue that asks for it, Epilogue.respell, the op's meaning takes
    their place and is visited).
    """

    def __init__(self, options: KevolveOptions, dispatcher: Dispatcher, transfer: NeighbourTransfer | None = None):
        self.options = options
        self.dispatcher = dispatcher
        self.transfer = transfer

    def uuid(self) -> str:
        """Changes with our code, the options, the families' sources and the cache contents."""
        h = hashlib.sha256()
        h.update(_code_digest().encode())
        h.update(self.options.fingerprint().encode())
        h.update(self.dispatcher.fingerprint().encode())
        return h.hexdigest()

    def __call__(self, graph: Graph) -> None:
        label = "backward" if any(n.op == "placeholder" and n.name.startswith("tangents") for n in graph.nodes) else "forward"
        if self.options.patterns:
            self._merge_gradient_sums(graph, label)
        nodes = list(graph.nodes)
        respelled = self._fuse_epilogues(graph, label) if self.options.patterns else []
        self._visit_all(graph, [n for n in nodes if not n._erased] + respelled, label)  # not the kernels spliced in
        graph.lint()

    def _merge_gradient_sums(self, graph: Graph, label: str) -> None:
        """Replace each sum of two embedding gradients of one table by one backward over both lookups
        (patterns.gradient_sums); a sum whose splice fails stays as it was."""
        for node in list(graph.nodes):
            found = None if node._erased else gradient_sums.find_gradient_sum(node)
            if found is None:
                continue
            merged, _ = self._splice(lambda: rewrite.replace_node(
                graph, node, gradient_sums.merged_embedding_backward, list(found.args)), node,
                "merging its embedding gradients")
            if not merged:
                continue
            graph.erase_node(found.first)
            graph.erase_node(found.second)
            log.debug("kevolve: %s %s: two embedding gradients of one table merged into one backward", label,
                      node.name)

    def _fuse_epilogues(self, graph: Graph, label: str) -> list[Node]:
        """Offer each epilogue to the cache as one call; the nodes of the meanings put back for unclaimed
        epilogues that ask for it (Epilogue.respell)."""
        respelled = []
        for node in list(graph.nodes):
            found = epilogues.find_epilogue(node)
            if found is None:
                continue
            if self._visit(graph, found.root, label, found.overload, list(found.args),
                           to_beat=self._fitness_alone(found.product)):
                for inner in found.nodes[1:]:
                    graph.erase_node(inner)
            elif found.respell:
                respelled += self._respell(graph, found, label)
        return respelled

    def _respell(self, graph: Graph, found: epilogues.Epilogue, label: str) -> list[Node]:
        """Replace the epilogue's nodes by its op's plain-ATen meaning; the meaning's nodes (none where that
        fails: the nodes then stay as they were)."""
        respelled, inserted = self._splice(lambda: self._decompose(graph, found.root, label, found.overload,
                                                                   list(found.args)),
                                           found.root, f"putting it back as {found.overload}")
        if not respelled:
            return []
        for inner in found.nodes[1:]:
            graph.erase_node(inner)
        log.debug("kevolve: %s %s (%s) put back as its meaning", label, found.root.name, found.overload)
        return inserted

    def _splice(self, change: Callable[[], T], node: Node, what: str) -> tuple[bool, T | None]:
        """Run `change`, a rewrite of the graph around `node` that leaves the graph unchanged where it fails:
        (whether it succeeded, its result). A failure raises with fallback off, else is logged (`what` failed)
        and the user's compile goes on without the change."""
        try:
            return True, change()
        except Exception as e:
            if not self.options.fallback:
                raise
            log.warning("kevolve: %s left as it was: %s failed: %s", node.name, what, e)
            return False, None

    def _family_for(self, target) -> KernelFamily | None:
        """The family implementing `target`, if the options let kevolve use it."""
        family = family_for(target)
        if family is None or (self.options.families is not None and family.name not in self.options.families):
            return None
        return family

    def _fitness_alone(self, node: Node) -> float:
        """The fitness of the cache's winner for `node` on its own; 1.0 (Inductor's kernel) where it has none or
        the fusion rule (fusion.refusal) would leave the node to Inductor anyway.

        A fused call whose fitness is at least this is no slower than that winner plus Inductor's pointwise
        kernel after it: both fitnesses are against Inductor, and the fused one's reference includes that kernel.
        """
        family = self._family_for(node.target)
        if family is None:
            return 1.0
        try:
            problem, varying = _problem(family, node.target, rewrite.example_values(rewrite.positional_args(node)))
            record = self._choose(family, OpKey.of(problem, DeviceInfo.of(_device_of(node))), varying).record
            if (record is None or _static_only(family, record.implementation, varying)
                    or fusion.refusal(record, family, problem, node) is not None):
                return 1.0
        except Exception as e:  # Unsupported, or a family bug, which the node's own visit logs
            if not (isinstance(e, Unsupported) or self.options.fallback):
                raise
            return 1.0
        return record.fitness

    def _choose(self, family: KernelFamily, key: OpKey, varying: frozenset[str]) -> Choice:
        """The dispatcher's choice for `key`. Where dims vary, the graph runs every size, so the winner is that of
        the largest sizes measured (Dispatcher.winners_like: after a short last batch, the full batches run this
        graph), among the keys that differ from `key` in the varying dims alone and whose implementation runs
        every size; where there is none, the choice for `key` itself."""
        if varying:
            for choice in self.dispatcher.winners_like(key, varying):
                if choice.record.implementation in family.dynamic_implementations:
                    names = ", ".join(sorted(varying))
                    sizes = ", ".join(f"{n}={v}" for n, v in choice.record.key.shape if n in varying)
                    return Choice(choice.record, f"{choice.reason}; at sizes that vary ({names}), the winner measured "
                                                 f"at the largest ({sizes}), which runs every size")
        return self.dispatcher.choose(key)

    def _visit_all(self, graph: Graph, nodes: list[Node], label: str) -> None:
        for node in nodes:
            if node.op != "call_function" or not isinstance(node.target, torch._ops.OpOverload):
                continue
            target = STANDS_FOR.get(node.target, node.target)
            kept_for_its_backward = is_pattern_op(target) and family_for(_offered(target)) is None  # none to offer
            if (kept_for_its_backward or not self._visit(graph, node, label, target)) and is_pattern_op(node.target):
                self._visit_all(graph, self._decompose(graph, node, label), label)

    @staticmethod
    def _decompose(graph: Graph, node: Node, label: str, overload=None, args: list | None = None) -> list[Node]:
        """Replace `node` by the plain-ATen meaning of pattern op `overload` on `args` (default: the node's own
        call), which Inductor compiles as the original pattern; the nodes of the meaning (visited like the graph's
        own)."""
        overload = node.target if overload is None else overload
        before = set(graph.nodes)
        rewrite.replace_node(graph, node, meaning(overload), rewrite.positional_args(node) if args is None else args)
        log.debug("kevolve: %s %s (%s) decomposed back to ATen", label, node.name, overload)
        return [n for n in graph.nodes if n not in before]

    def _visit(self, graph: Graph, node: Node, label: str, target=None, args: list | None = None,
               to_beat: float = 1.0) -> bool:
        """Replace `node` by a kernel where one is chosen; whether it was replaced. The kernel computes `target`
        on `args` (default: the node's own call), whose value must be the node's; a cached winner must have a
        fitness above `to_beat`. A layout op is planned as its inner call (INNER_CALLS), its kernel the form of the
        inner call's winner that computes the layout op."""
        target = node.target if target is None else target
        op = str(target)
        family = self._family_for(_offered(target))
        if family is None:
            self._leave(label, node, op, None, None, "no kevolve family implements it")
            return False
        try:
            args = rewrite.positional_args(node) if args is None else args
            values = rewrite.example_values(args)
            inner = INNER_CALLS.get(target)
            offered = (target, values) if inner is None else (inner.overload, inner.arguments(*values))
            problem, varying = _problem(family, *offered)
            key, plan = self._plan(family, problem, node, args, to_beat, varying)
        except Unsupported as e:
            self._leave(label, node, op, family.name, None, str(e))
            return False
        except Exception as e:  # a family bug must not break the user's compile either
            if not self.options.fallback:
                raise
            log.warning("kevolve: %s left to Inductor: family %s failed on it: %s", node.name, family.name, e)
            self._leave(label, node, op, family.name, None, f"family failed ({type(e).__name__}: {e})")
            return False
        if isinstance(plan, str):
            self._leave(label, node, op, family.name, key.short(), plan, problem)
            return False
        try:
            kernel = _kernel(plan, target)
            if isinstance(kernel, str):
                self._leave(label, node, op, family.name, plan.key.short(), kernel, problem)
                return False
            fn, as_offered = kernel
            if self.options.verify or plan.transferred:
                with unset_fake_temporarily():
                    check_kernel(plan.family, plan.problem, as_offered, _device_of(node), seeds=(0, 1),
                                 dists=("normal", "edge"))
            rewrite.replace_node(graph, node, fn, args)
        except Exception as e:  # a bad kernel must never break the user's compile
            if not self.options.fallback:
                raise
            log.warning("kevolve: %s left to Inductor: %s %s failed: %s", node.name, plan.implementation.name, plan.genome, e)
            self._leave(label, node, op, family.name, plan.key.short(), f"kernel failed ({type(e).__name__}: {e})", problem)
            return False
        log.info("kevolve: %s %s -> %s %s (%s)", label, op, plan.implementation.name, plan.genome, plan.reason)
        decisions.report(
            decisions.NodeDecision(label, node.name, op, family.name, plan.key.short(), True,
                                   plan.implementation.name, plan.genome, plan.reason, problem)
        )
        return True

    def _plan(self, family: KernelFamily, problem: Problem, node: Node, args: list,
              to_beat: float = 1.0, varying: frozenset[str] = frozenset()) -> tuple[OpKey, _Plan | str]:
        """The node's key, and what to run for it on `args` or the reason to leave it to Inductor (or to the
        kernels of its parts: a winner must beat `to_beat`; where the call's dims `varying` change from run to
        run, a kernel must run every size, and a winner measured at other sizes of them (_choose) is planned,
        and its genome checked, at those)."""
        device = _device_of(node)
        key = OpKey.of(problem, DeviceInfo.of(device))
        choice = self._choose(family, key, varying)
        transferred = False
        if self.options.interpret:
            kernel = family.default_kernel(problem, Abstraction.TRITON, dynamic=varying)
            if kernel is None:
                return key, (f"interpret mode: no genome of the family's Triton kernels supports this call"
                             f"{' at sizes that vary' if varying else ''}")
            impl, genome = kernel
            reason = "interpret mode (forced), default genome"
            if choice.record is not None and choice.record.implementation == impl.name:
                genome, reason = choice.record.genome, "interpret mode (forced), cached genome"
        else:
            record, reason = choice.record, choice.reason
            if record is None and self.transfer is not None:
                donor = self.transfer.donor(key, family, problem)
                if donor is not None:
                    record, transferred = donor.record, True
                    reason = (f"transferred from {donor.record.key.short()} (distance {donor.distance:.2g}, its "
                              f"fitness {donor.record.fitness:.2f}); checked on this key")
            if record is None:
                return key, choice.reason
            if _static_only(family, record.implementation, varying):
                return key, (f"its sizes vary at run time (symbolic), and the winner {record.implementation} runs "
                             f"static sizes only")
            if record.fitness <= to_beat:
                return key, (f"its parts' own kernels are faster: the product's winner has fitness {to_beat:.2f}, "
                             f"this {record.fitness:.2f}")
            unfused = fusion.refusal(record, family, problem, node, args)
            if unfused is not None:
                return key, unfused
            impl = family.implementation(record.implementation)
            genome = record.genome
            if not transferred:
                problem = _at_key(problem, record.key, varying)
            if impl.abstraction is Abstraction.TRITON and device.type != "cuda":
                return key, f"Triton kernels run on {device.type} only in interpret mode"
        unsupported = impl.supports(problem, genome)
        if unsupported is not None:
            return key, f"{impl.name} {genome} does not support this call: {unsupported}"
        return key, _Plan(family, problem, key, impl, genome, reason, transferred)

    @staticmethod
    def _leave(label: str, node: Node, op: str, family: str | None, key: str | None, reason: str,
               problem: Problem | None = None) -> None:
        log.debug("kevolve: %s %s (%s) left to Inductor: %s", label, node.name, op, reason)
        decisions.report(decisions.NodeDecision(label, node.name, op, family, key, False, None, None, reason, problem))


def _offered(target):
    """The overload a call of `target` is offered to the families as: a layout op's inner call's, else its own."""
    inner = INNER_CALLS.get(target)
    return target if inner is None else inner.overload


def _kernel(plan: _Plan, target) -> tuple[Callable, Callable] | str:
    """The planned kernel as a callable of `target`'s arguments, and as one of the planned family's overload (the
    same callable, but for a layout op: its form, LAYOUT_FORMS, then as the inner call); the reason where the
    winner has no form computing the layout op."""
    if target not in INNER_CALLS:
        fn = plan.implementation.build(plan.problem, plan.genome)
        return fn, fn
    form = LAYOUT_FORMS.get((target, plan.implementation.name))
    if form is None:
        return f"the kernel planned for its inner call, {plan.implementation.name}, has no form computing it"
    fn = form.build(plan.problem, plan.genome)
    return fn if isinstance(fn, str) else (fn, form.as_inner(fn))


def _problem(family: KernelFamily, target, values: list) -> tuple[Problem, frozenset[str]]:
    """The family's problem of `target` on `values` (example values and constants), and the names of its dims that
    vary at run time (none: static sizes): such a call is keyed by the sizes the graph was compiled with
    (size_hints), adding no guard."""
    if is_symbolic(values):
        return size_hints.varying_problem(family, target, values)
    return family.problem(target, values, {}), frozenset()


def _at_key(problem: Problem, key: OpKey, varying: frozenset[str]) -> Problem:
    """`problem` with its `varying` dims at `key`'s sizes (the representative of that key's bucket there)."""
    shape = dict(key.shape)
    return dataclasses.replace(problem, dims=tuple((n, shape[n] if n in varying else v) for n, v in problem.dims))


def _static_only(family: KernelFamily, implementation: str, varying: frozenset[str]) -> bool:
    """Whether sizes vary but the family's `implementation` runs static sizes only."""
    return varying and implementation not in family.dynamic_implementations


def _device_of(node: Node) -> torch.device:
    """The device of the node's first tensor argument (or output)."""
    for a in list(node.args) + [node]:
        if isinstance(a, Node):
            val = a.meta.get("val")
            if isinstance(val, (tuple, list)):
                val = val[0]
            if isinstance(val, torch.Tensor):
                return val.device
    return torch.device("cpu")
