"""One timing method for reference and candidates, and the device ceilings measured with it.

On CUDA, GPU time of the launches replayed from a CUDA graph (do_bench_cudagraph): what a kernel costs inside
a compiled model, where Inductor's wrapper launches it, without the Python cost of calling it eagerly;
do_bench (launch by launch) for work that cannot be captured. On CPU, the wall-clock median.
"""
from __future__ import annotations

import functools
import statistics
import time
from typing import Callable

import torch


def median_us(fn: Callable[[], object], device: torch.device) -> float:
    """Median run time of `fn` in microseconds (warm-up excluded; on CUDA L2 is flushed between runs)."""
    return _time_us(fn, device, "median")


def paired_us(candidate: Callable[[], object], reference: Callable[[], object], device: torch.device) -> tuple[float, float, str]:
    """(candidate us, reference us, method): both medians by one method, graphed where both can be captured,
    else launch by launch (`graphed_us` / `median_us`)."""
    try:
        return graphed_us(candidate, device), graphed_us(reference, device), "graphed"
    except Exception:
        return median_us(candidate, device), median_us(reference, device), "launched"


def graphed_or_launched_us(fn: Callable[[], object], device: torch.device) -> float:
    """`graphed_us`, or `median_us` where `fn` cannot be captured."""
    try:
        return graphed_us(fn, device)
    except Exception:
        return median_us(fn, device)


def graphed_us(fn: Callable[[], object], device: torch.device, mode: str = "median", rep_ms: int = 100) -> float:
    """Median (or min) GPU time of `fn`'s launches replayed from a CUDA graph for about `rep_ms`; raises if `fn`
    cannot be captured (a host synchronisation, say). On CPU the same as `median_us`."""
    if device.type != "cuda":
        return _time_us(fn, device, mode)
    import triton.testing

    torch.cuda.synchronize()
    return triton.testing.do_bench_cudagraph(fn, rep=rep_ms, return_mode=mode) * 1e3


def _time_us(fn: Callable[[], object], device: torch.device, mode: str, warmup: int = 3, reps: int = 20) -> float:
    if device.type == "cuda":
        import triton.testing

        return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode=mode) * 1e3
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return (statistics.median(times) if mode == "median" else min(times)) * 1e6


def copy_floor_us(nbytes: int, device: torch.device) -> float:
    """Fastest time to move `nbytes` (half read, half written) with a plain copy: the roofline floor of a
    kernel that must move that many bytes. The faster of two copies: the driver's memcpy and an elementwise
    kernel (16-byte vector loads and stores), since neither is the faster one on every device."""
    half = max(-(-nbytes // 32) * 16, 16)  # each buffer rounded up to whole float4s
    src = torch.empty(half, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    src32, dst32 = src.view(torch.float32), dst.view(torch.float32)
    return min(graphed_us(lambda: dst.copy_(src), device, "min"),
               graphed_us(lambda: torch.neg(src32, out=dst32), device, "min"))


@functools.cache
def copy_ceiling_gbps(device: torch.device) -> float:
    """Measured copy bandwidth of `device` on a buffer far larger than its caches (bytes read + written; the
    faster copy of `copy_floor_us`)."""
    nbytes = 1 << 31 if device.type == "cuda" else 1 << 27
    return nbytes / (copy_floor_us(nbytes, device) * 1e3)


@functools.cache
def matmul_ceiling_tflops(device: torch.device, dtype: torch.dtype) -> float:
    """Measured dense matmul throughput of `device` in `dtype`."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device).to(dtype)
    return 2 * n**3 / (median_us(lambda: a @ a, device) * 1e6)
