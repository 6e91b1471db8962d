"""Running a benchmark's child process to its end."""
from __future__ import annotations

import subprocess
import tempfile
from typing import Sequence


def run_to_end(command: Sequence[str], env: dict[str, str] | None = None,
               capture_stdout: bool = False) -> tuple[int, str, str]:
    """Run `command` (with environment `env`, default this process's) until it exits: its return code, its stdout
    (empty unless `capture_stdout`; else it is this process's stdout) and its stderr. Output goes through
    temporary files, not pipes, so that processes the child left behind (Inductor's compile workers) cannot hold
    the wait open."""
    with (tempfile.TemporaryFile("w+", errors="replace") as out,
          tempfile.TemporaryFile("w+", errors="replace") as err):
        code = subprocess.run(command, env=env, stdout=out if capture_stdout else None, stderr=err).returncode
        out.seek(0)
        err.seek(0)
        return code, out.read(), err.read()
