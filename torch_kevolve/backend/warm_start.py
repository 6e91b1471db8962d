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
"""
from __future__ import annotations

import os

import torch._inductor.config as inductor_config

STATIC_LAUNCH = "static_launch_user_defined_triton_kernels"
WORKER_ENVIRONMENT = "TORCHINDUCTOR_STATIC_LAUNCH_USER_DEFINED_TRITON_KERNELS"  # the setting, as workers read it


def static_launch_patches() -> dict:
    """Inductor config patches statically launching user-defined Triton kernels; none where this torch lacks the
    setting or the user turned it off (WORKER_ENVIRONMENT=0). The setting is also put in this process's
    environment, for the compile workers started from then on (the process's, Inductor's own compiles included);
    a pool started before keeps compiling user kernels for Triton's launcher."""
    if not hasattr(inductor_config, STATIC_LAUNCH) or os.environ.get(WORKER_ENVIRONMENT) == "0":
        return {}
    os.environ[WORKER_ENVIRONMENT] = "1"
    return {STATIC_LAUNCH: True}
