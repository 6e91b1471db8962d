"""GPU kernel time per call, from the profiler: what a step costs the device, CPU launch overhead aside."""
from __future__ import annotations

from typing import Callable

import torch


def kernel_us(fn: Callable[[], object], calls: int = 10) -> float:
    """Summed self time of the CUDA kernels and copies that `calls` runs of `fn` launch, per call, in us."""
    fn()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    return sum(e.self_device_time_total for e in prof.key_averages()) / calls
