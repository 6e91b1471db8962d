"""What keeps a warm start of a kevolve-compiled model as cheap as Inductor's own.

Inductor's FX graph cache bundles the compiled binaries of its own kernels and launches them through its static
launcher on a warm start; user-defined Triton kernels (all of kevolve's, launched through `wrap_triton`) are left
out of that bundle unless `static_launch_user_defined_triton_kernels` is on, so each warm process sent every one of
them back through the compile workers (the DLRM: 36 of its 59 kernels). On the H200 turning it on brought the
DLRM's warm compile from 1.63x Inductor's to 1.19x and 1.04x (medians of 3 and 5 fresh processes,
benchmarks/results/compile-time-dlrm-static*-h200.json), with the same losses and gradients. Inductor still
launches any kernel its static launcher cannot take through Triton (14 of the DLRM's: not yet known why).
"""
from __future__ import annotations

import torch._inductor.config as inductor_config

STATIC_LAUNCH = "static_launch_user_defined_triton_kernels"


def static_launch_patches() -> dict:
    """Inductor config patches statically launching user-defined Triton kernels; none where this torch lacks the
    setting."""
    return {STATIC_LAUNCH: True} if hasattr(inductor_config, STATIC_LAUNCH) else {}
