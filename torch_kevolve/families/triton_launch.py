"""Launching Triton kernels on any device: CPU tensors run through Triton's interpreter."""
from __future__ import annotations

import contextlib
import functools
import threading

import torch
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction

_interpreting = threading.Lock()


def _interpreted(kernel) -> InterpretedFunction:
    return _interpreted_fn(kernel.fn)


@functools.cache
def _interpreted_fn(fn) -> InterpretedFunction:
    return InterpretedFunction(fn)


def _language_namespaces() -> list:
    """The modules and classes of triton.language that the interpreter patches while it runs."""
    namespaces = [tl, tl.core, tl.math, tl.core.tensor, tl.core.dtype]
    return namespaces + [getattr(tl.core, n) for n in ("condition", "tensor_descriptor_base") if hasattr(tl.core, n)]


@contextlib.contextmanager
def _interpreter_session():
    """Let interpreted code call @triton.jit functions (triton.language's own zeros, sum, max...),
    and leave triton.language exactly as found.

    Without TRITON_INTERPRET at import time those are compiled-only JITFunctions that refuse Python
    calls; during an interpreted launch such calls run interpreted too. The interpreter's nested
    calls patch triton.language without undoing it, which would break later GPU compilation, so
    every patched namespace is restored afterwards.
    """
    with _interpreting:
        saved = [(ns, dict(vars(ns))) for ns in _language_namespaces()]
        original_call = JITFunction.__call__
        JITFunction.__call__ = lambda self, *args, **kwargs: _interpreted(self)(*args, **kwargs)
        try:
            yield
        finally:
            JITFunction.__call__ = original_call
            for ns, attrs in saved:
                for name in set(vars(ns)) - set(attrs):
                    delattr(ns, name)
                for name, value in attrs.items():
                    if vars(ns).get(name) is not value:
                        setattr(ns, name, value)


def launch(kernel, grid: tuple[int, ...], *args, **kwargs) -> None:
    """Run `kernel[grid](*args, **kwargs)`; an empty grid runs nothing.

    Kernels on CPU tensors go through the interpreter whether or not TRITON_INTERPRET is set; on GPUs
    the launch goes through `wrap_triton`, so that a traced graph holds the kernel for Inductor to launch.
    """
    if 0 in grid:
        return
    device = next(a.device for a in args if isinstance(a, torch.Tensor))
    if device.type != "cpu":
        torch.library.wrap_triton(kernel)[grid](*args, **kwargs)
        return
    with _interpreter_session():
        _interpreted(kernel)[grid](*args, **kwargs)
