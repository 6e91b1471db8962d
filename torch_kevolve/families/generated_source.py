"""Importing generated Triton source: Triton's JIT reads kernel source through inspect, which needs a real
file, so generated text is written to a file named by its sha256 (atomically, once) and imported."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from ..partial_files import partial_path


def generated_dir(folder: str) -> Path:
    return Path(tempfile.gettempdir()) / f"torch_kevolve-{os.getuid()}" / folder


def import_generated(module_name: str, source: str, folder: str) -> ModuleType:
    """The module `module_name` whose text is `source` (kept in sys.modules; later calls return it)."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = generated_dir(folder) / f"kernels_{hashlib.sha256(source.encode()).hexdigest()}.py"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_path(path)
        partial.write_text(source)
        os.replace(partial, path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
