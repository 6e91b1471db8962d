"""The parent's handle on one worker subprocess: start it, send JSON-line requests with a deadline, kill it.

The worker runs in its own process group (killing it takes whatever it started along) and writes its
stderr to a temporary file, whose tail explains a crash.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

from .poison import WORKER_ENV

STDERR_TAIL_CHARS = 3000


class WorkerDied(Exception):
    """The worker exited (or closed its reply pipe) before answering; the message has its exit and stderr tail."""


class WorkerTimeout(Exception):
    """The worker did not answer before the deadline."""


def worker_environment(gpu: int | None = None) -> dict[str, str]:
    """This process's environment, with its import path (so the worker imports the same families), the
    allocation poisoning and, given `gpu`, only that local GPU visible."""
    path = [os.path.abspath(p or os.getcwd()) for p in sys.path if os.path.isdir(p or os.getcwd())]
    pinned = {} if gpu is None else {"CUDA_VISIBLE_DEVICES": _visible_device(gpu)}
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(path)), **WORKER_ENV, **pinned}


def _visible_device(gpu: int) -> str:
    """The CUDA_VISIBLE_DEVICES entry of this process's `gpu`-th visible device."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return visible.split(",")[gpu] if visible else str(gpu)


class WorkerProcess:
    """One worker (`python -m torch_kevolve.evolve.worker`), started without waiting for it: requests may be
    sent at once (the worker reads them once it is up); the first `receive` also waits for it to be ready.
    Given `gpu`, the worker sees only that local GPU (as its cuda:0)."""

    def __init__(self, gpu: int | None = None):
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "torch_kevolve.evolve.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=worker_environment(gpu), start_new_session=True,
        )
        self._buffer = b""
        self._ready = False
        self.pid = self._process.pid

    def send(self, message: dict) -> None:
        """Queue `message` for the worker. Raises WorkerDied (the worker is then dead)."""
        try:
            self._process.stdin.write((json.dumps(message) + "\n").encode())
            self._process.stdin.flush()
        except BrokenPipeError:
            raise self._died() from None

    def receive(self, timeout_s: float) -> dict:
        """The reply to the oldest unanswered message. Raises WorkerTimeout or WorkerDied (the worker is then dead)."""
        deadline = time.monotonic() + timeout_s
        if not self._ready:
            self._read(deadline)
            self._ready = True
        return self._read(deadline)

    def request(self, message: dict, timeout_s: float) -> dict:
        """`send` then `receive`."""
        self.send(message)
        return self.receive(timeout_s)

    def _read(self, deadline: float) -> dict:
        fd = self._process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise WorkerTimeout(f"no answer within the timeout; worker {self.pid} killed")
            if not select.select([fd], [], [], left)[0]:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise self._died()
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def _died(self) -> WorkerDied:
        self.kill()
        code = self._process.returncode
        how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, self._stderr.tell() - STDERR_TAIL_CHARS))
        tail = self._stderr.read().decode(errors="replace").strip()
        return WorkerDied(f"worker {self.pid} died ({how}); its last output:\n{tail}")

    def kill(self) -> None:
        """End the worker and everything it started; idempotent."""
        if self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            try:
                stream.close()
            except OSError:
                pass
