"""What keeps a warm start of a kevolve-compiled model as cheap as Inductor's own.

Inductor's FX graph cache bundles the compiled binaries of its own kernels and launches them through its static
launcher on a warm start; user-defined Triton kernels (all of kevolve's, launched through `wrap_triton`) are left
out of that bundle unless `static_launch_user_defined_triton_kernels` is on, so each warm process sent every one of
them back through the compile workers (the DLRM: 36 of its 59 kernels). On the H200 turning it on brought the
DLRM's warm compile from 1.63x Inductor's to 1.19x and 1.04x (medians of 3 and 5 fresh processes,
benchmarks/results/compile-time-dlrm-static*-h200.json), with the same losses and gradients.

The setting must also reach Inductor's compile workers: of the parent's config they are handed only
`use_static_triton_launcher`, and they read this one from their environment when they start. Where a worker
compiled a kernel without it, the kernel stayed out of the bundle (14 of the DLRM's 59; with Inductor's strict
launcher check on, the first such kernel failed in a worker with "User defined triton kernel",
benchmarks/results/compile-time-strict-h200.json), and the first warm process compiled those again.

So the setting goes into the environment when the backend is imported, before its first compile: a pool that an
earlier Inductor compile of the process started (a benchmark's warm-up, or a model compiled by Inductor first)
would otherwise compile every kevolve kernel for Triton's launcher, whose launches cost more host time (on the
H100 all 23 of the seq model's per training step, benchmarks/results/host-seq-h100.json). A pool already running
then is reported once, at kevolve's first compile.
"""
from __future__ import annotations

import logging
import os

import torch._inductor.async_compile as async_compile
import torch._inductor.config as inductor_config

STATIC_LAUNCH = "static_launch_user_defined_triton_kernels"
WORKER_ENVIRONMENT = "TORCHINDUCTOR_STATIC_LAUNCH_USER_DEFINED_TRITON_KERNELS"  # the setting, as workers read it

log = logging.getLogger("torch_kevolve")


def _off() -> bool:
    """Whether this torch lacks the setting or the user turned it off (WORKER_ENVIRONMENT=0)."""
    return not hasattr(inductor_config, STATIC_LAUNCH) or os.environ.get(WORKER_ENVIRONMENT) == "0"


def enable_in_new_workers() -> bool:
    """Put the setting in this process's environment, for the compile workers started from now on (the process's,
    Inductor's own compiles included), unless this torch lacks it or the user set it (0 turns it off); whether a
    pool of workers was already running without it."""
    if _off() or os.environ.get(WORKER_ENVIRONMENT) == "1":
        return False
    os.environ[WORKER_ENVIRONMENT] = "1"
    return bool(getattr(async_compile, "_pool_set", ()))


_late = {"pool": enable_in_new_workers(), "reported": False}  # at import, before the backend's first compile


def static_launch_patches() -> dict:
    """Inductor config patches statically launching user-defined Triton kernels; none where this torch lacks the
    setting or the user turned it off (WORKER_ENVIRONMENT=0). The first call warns if compile workers started
    before the backend was imported (their user kernels go through Triton's launcher)."""
    if _off():
        return {}
    _late["pool"] = enable_in_new_workers() or _late["pool"]
    if _late["pool"] and not _late["reported"]:
        _late["reported"] = True
        log.warning("kevolve: Inductor's compile workers started before torch_kevolve.backend was imported; the "
                    "kernels they compile for kevolve launch through Triton's launcher, at more host time per "
                    "launch. Import torch_kevolve.backend before the first torch.compile, or set %s=1.",
                    WORKER_ENVIRONMENT)
    return {STATIC_LAUNCH: True}
