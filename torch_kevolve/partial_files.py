"""Names for files written in full before an os.replace publishes them (atomic writes)."""
from __future__ import annotations

import os
import threading
from pathlib import Path


def partial_path(path: Path) -> Path:
    """A hidden sibling of `path` that no other process or thread writes at the same time: the file to write
    before `os.replace(partial_path(path), path)`."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
