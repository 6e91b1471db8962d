"""GPU kernel time per call, from the profiler: what a step costs the device, CPU launch overhead aside."""
from __future__ import annotations

from typing import Callable

import torch


def kernel_profile(fn: Callable[[], object], calls: int = 10) -> dict[str, tuple[float, float]]:
    """Each CUDA kernel and copy (by name) that `calls` runs of `fn` launch: (self time in us, launches), both per
    call, longest first."""
    fn()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    kernels = {e.key: (e.self_device_time_total / calls, e.count / calls) for e in prof.key_averages()
               if e.self_device_time_total > 0}
    return dict(sorted(kernels.items(), key=lambda kv: -kv[1][0]))


def kernel_times_us(fn: Callable[[], object], calls: int = 10) -> dict[str, float]:
    """Self time of each CUDA kernel and copy (by name) that `calls` runs of `fn` launch, per call, in us,
    longest first."""
    return {name: us for name, (us, _) in kernel_profile(fn, calls).items()}


def kernel_us(fn: Callable[[], object], calls: int = 10) -> float:
    """Summed self time of the CUDA kernels and copies that `calls` runs of `fn` launch, per call, in us."""
    return sum(kernel_times_us(fn, calls).values())
