"""One timing method for reference and candidates: do_bench median on CUDA, wall-clock median on CPU."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def median_us(fn: Callable[[], object], device: torch.device, *, warmup: int = 3, reps: int = 20) -> float:
    """Median run time of `fn` in microseconds (warm-up excluded; on CUDA L2 is flushed between runs)."""
    if device.type == "cuda":
        import triton.testing

        return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median") * 1e3
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6
