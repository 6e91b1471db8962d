"""Static checks on a candidate's source, before it runs: what a kernel must never do to win.

A candidate may not start threads or processes, use side CUDA streams, read files or the network,
patch timers or the benchmark, run code from strings, or hand its own operator back to PyTorch.
"""
from __future__ import annotations

import ast
import importlib
import inspect
from typing import Iterable

from ..families.base import Implementation, KernelFamily

FORBIDDEN_MODULES = frozenset({
    "threading", "multiprocessing", "subprocess", "concurrent", "asyncio", "socket", "urllib", "http",
    "requests", "ctypes", "pickle", "shutil", "signal", "time", "os", "sys", "importlib", "builtins",
})
FORBIDDEN_CALLS = frozenset({"open", "eval", "exec", "compile", "__import__", "globals", "setattr", "delattr"})
STREAM_APIS = frozenset({"Stream", "stream", "ExternalStream", "set_stream", "StreamContext"})
PATCHABLE_ROOTS = frozenset({"torch", "triton", "time", "tl"})
TORCH_ROOTS = frozenset({"torch", "F", "aten", "nn"})


def dotted(node: ast.AST) -> str:
    """`a.b.c` for an attribute chain on a name, else ''."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def violations(source: str, own_ops: Iterable[str] = ()) -> list[str]:
    """Every rule `source` breaks, as 'line N: what' (empty when it passes).

    `own_ops`: names of the operator the candidate must compute itself (e.g. "embedding_bag"); a call
    through torch/F/aten/nn that names one of them (torch.ops.aten._embedding_bag, F.embedding_bag) is refused.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        return [f"line {e.lineno}: syntax error: {e.msg}"]
    own = tuple(own_ops)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append((line, f"imports {name}"))
        elif isinstance(node, ast.Call):
            name = dotted(node.func)
            last = name.rsplit(".", 1)[-1]
            if name in FORBIDDEN_CALLS:
                found.append((line, f"calls {name}()"))
            elif name.startswith("torch.cuda.") and last in STREAM_APIS:
                found.append((line, f"uses a side CUDA stream ({name})"))
            elif name.split(".")[0] in TORCH_ROOTS and "." in name and any(
                    part in (op, f"_{op}") or part.startswith(f"_{op}_") for part in name.split(".")[1:] for op in own):
                found.append((line, f"hands its own operator back to PyTorch ({name})"))
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = dotted(target)
                if isinstance(target, ast.Attribute) and name.split(".")[0] in PATCHABLE_ROOTS:
                    found.append((line, f"patches {name}"))
    return [f"line {line}: {what}" for line, what in sorted(set(found))]


# Shared launch plumbing (the interpreter session's lock and namespace patching) is trusted code, not a candidate's.
TRUSTED_MODULES = frozenset({"torch_kevolve.families.triton_launch"})


def own_operator_names(family: KernelFamily) -> tuple[str, ...]:
    """The operator names a family's candidates must not call: its overloads without namespace or underscores."""
    return tuple(sorted({o.name().split("::")[-1].lstrip("_") for o in family.overloads}))


def implementation_violations(family: KernelFamily, impl: Implementation) -> list[str]:
    """`violations` over each module of the implementation's source (trusted launch plumbing excepted)."""
    found = []
    for module in impl.source_modules:
        if module not in TRUSTED_MODULES:
            source = inspect.getsource(importlib.import_module(module))
            found += [f"{module} {v}" for v in violations(source, own_operator_names(family))]
    return found
