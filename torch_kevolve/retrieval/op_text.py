"""The text that stands for an ATen overload in retrieval: its name, schema and a one-line description."""
from __future__ import annotations

import functools
import re

import torch

_DOC_NAMESPACES = ("torch", "torch.nn.functional", "torch.special", "torch.linalg", "torch.fft", "torch.Tensor")
_ROLE_SUFFIXES = (("_backward_data", "gradient of"), ("_backward", "gradient of"), ("_forward_only", ""),
                  ("_forward", ""))


def aten_overloads() -> list[str]:
    """Every ATen overload this torch registers, as `aten.NAME.OVERLOAD` (the text of OpOverload.__str__)."""
    names = []
    for qualified in torch._C._dispatch_get_all_op_names():
        if qualified.startswith("aten::"):
            name, _, overload = qualified[len("aten::"):].partition(".")
            names.append(f"aten.{name}.{overload or 'default'}")
    return sorted(set(names))


def _overload(op: str):
    """The OpOverload named `aten.NAME.OVERLOAD`, or None."""
    namespace, name, overload = (op.split(".") + ["", ""])[:3]
    packet = getattr(getattr(torch.ops, namespace, None), name, None)
    return getattr(packet, overload, None) if packet is not None else None


def _first_sentence(doc: str | None) -> str:
    """The first line of prose of a docstring (signature lines skipped), without reST markup."""
    for line in (doc or "").strip().splitlines():
        line = line.strip()
        if line and not re.match(r"^[\w.]+\(.*\)(\s*->.*)?$", line):
            return re.sub(r":\w+:`~?([^`]+)`|`+([^`]+)`+", lambda m: m.group(1) or m.group(2), line)
    return ""


@functools.cache
def _documented(name: str) -> str:
    for path in _DOC_NAMESPACES:
        namespace = functools.reduce(getattr, path.split(".")[1:], torch)
        sentence = _first_sentence(getattr(getattr(namespace, name, None), "__doc__", None))
        if sentence:
            return sentence
    return ""


def description(op: str) -> str:
    """One line on what `op` computes, from the docstring of the public torch function it backs ("" if none)."""
    name = op.split(".")[1].strip("_")
    for suffix, role in _ROLE_SUFFIXES:
        if name.endswith(suffix):
            base = _documented(name[: -len(suffix)].strip("_"))
            return f"{role} {base[0].lower()}{base[1:]}".strip() if base and role else base
    return _documented(name.rstrip("_"))


def op_text(op: str) -> str:
    """`aten.NAME.OVERLOAD: schema. description` for embedding."""
    overload = _overload(op)
    schema = str(overload._schema) if overload is not None else op
    return f"{op}: {schema}. {description(op)}".strip()
