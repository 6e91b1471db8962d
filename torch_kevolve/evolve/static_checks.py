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
    "pathlib", "io", "tempfile", "glob", "mmap", "fcntl", "shelve", "marshal", "sqlite3", "unittest", "inspect",
})
FORBIDDEN_CALLS = frozenset({"open", "eval", "exec", "compile", "__import__", "globals", "locals", "vars",
                             "setattr", "delattr", "breakpoint", "input"})
STREAM_APIS = frozenset({"Stream", "stream", "ExternalStream", "set_stream", "StreamContext"})
PATCHABLE_ROOTS = frozenset({"torch", "triton", "time", "tl"})
TORCH_ROOTS = frozenset({"torch", "F", "aten", "nn"})
TRITON_ROOTS = frozenset({"triton", "tl"})
# torch calls that run work concurrently, or read or write files.
FORBIDDEN_TORCH_CALLS = frozenset({"fork", "_fork", "load", "save", "from_file", "fromfile", "memmap"})
# Modules of Python-number arithmetic (math.prod over a shape is not the prod operator).
PYTHON_NUMBER_ROOTS = frozenset({"math", "operator"})
DYNAMIC_LOOKUPS = frozenset({"getattr", "__getattr__", "__getattribute__"})


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


def _imported_names(tree: ast.AST) -> dict[str, str]:
    """Every name an import binds -> the module (or module.name) it stands for."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                names[a.asname or a.name] = f"{node.module or ''}.{a.name}"
    return names


def _names_own_op(parts: Iterable[str], own: tuple[str, ...]) -> bool:
    return any(part in (op, f"_{op}") or part.startswith(f"_{op}_") for part in parts for op in own)


def violations(source: str, own_ops: Iterable[str] = ()) -> list[str]:
    """Every rule `source` breaks, as 'line N: what' (empty when it passes).

    `own_ops`: names of the operator the candidate must compute itself (e.g. "embedding_bag"); a call
    through torch/F/aten/nn (or any alias of a torch module) that names one of them, or a method of that
    name on anything but Triton, is refused (torch.ops.aten._embedding_bag, F.embedding_bag, x.sum for "sum").
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        return [f"line {e.lineno}: syntax error: {e.msg}"]
    own = tuple(own_ops)
    imported = _imported_names(tree)
    torch_roots = TORCH_ROOTS | {n for n, m in imported.items() if m.split(".")[0] == "torch"}
    triton_roots = TRITON_ROOTS | {n for n, m in imported.items() if m.split(".")[0] == "triton"}
    patchable = PATCHABLE_ROOTS | set(imported)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if any(part in FORBIDDEN_MODULES for part in module.split(".")):
                    found.append((line, f"imports {module}"))
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
                for a in node.names:
                    if a.name in STREAM_APIS:
                        found.append((line, f"imports a side CUDA stream API ({node.module}.{a.name})"))
                    elif _names_own_op([a.name], own):
                        found.append((line, f"hands its own operator back to PyTorch ({node.module}.{a.name})"))
        elif isinstance(node, ast.Call):
            name = dotted(node.func)
            parts = name.split(".")
            root = parts[0]
            last = node.func.attr if isinstance(node.func, ast.Attribute) else parts[-1]
            name = name or f"<expression>.{last}"
            if name in FORBIDDEN_CALLS:
                found.append((line, f"calls {name}()"))
            elif root in torch_roots and last in STREAM_APIS:
                found.append((line, f"uses a side CUDA stream ({name})"))
            elif root in torch_roots and (last in FORBIDDEN_TORCH_CALLS or "hub" in parts[1:]):
                found.append((line, f"calls {name}() (concurrency or file access)"))
            elif root in torch_roots and "." in name and _names_own_op(parts[1:], own):
                found.append((line, f"hands its own operator back to PyTorch ({name})"))
            elif (root not in triton_roots | PYTHON_NUMBER_ROOTS and isinstance(node.func, ast.Attribute)
                  and _names_own_op([last], own)):
                found.append((line, f"hands its own operator back to PyTorch ({name})"))
            elif last in DYNAMIC_LOOKUPS and (isinstance(node.func, ast.Attribute) or any(
                    dotted(a).split(".")[0] in torch_roots for a in node.args[:1])):
                found.append((line, f"looks up a torch attribute by name ({name})"))
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = dotted(target)
                if isinstance(target, ast.Attribute) and (name.split(".")[0] in patchable or target.attr.startswith("__")):
                    found.append((line, f"patches {name or target.attr}"))
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
