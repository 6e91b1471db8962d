"""Numeric features of a cache key: log2 shape, dtypes, parameters, stride class and device."""
from __future__ import annotations

import hashlib
import math

import numpy as np

from ..key import OpKey

SHAPE_SLOTS = 6
DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "bool")
PARAM_SLOTS = 8
# Peak memory bandwidth in GB/s by product name (first match); CPUs and unknown devices get the last entry.
BANDWIDTH_GBPS = (("H200", 4800.0), ("H100", 3350.0), ("A100", 2039.0), ("L40", 864.0), ("", 100.0))


def shape_features(key: OpKey) -> np.ndarray:
    """log2(1 + dim) / 32 of the key's first SHAPE_SLOTS dims, in the family's order (zeros beyond)."""
    out = np.zeros(SHAPE_SLOTS, dtype=np.float32)
    for i, (_, n) in enumerate(key.shape[:SHAPE_SLOTS]):
        out[i] = math.log2(1 + n) / 32
    return out


def dtype_features(key: OpKey) -> np.ndarray:
    """Which dtypes the key's tensors have (multi-hot; the last slot counts any other)."""
    out = np.zeros(len(DTYPES) + 1, dtype=np.float32)
    for _, name in key.dtypes:
        out[DTYPES.index(name) if name in DTYPES else len(DTYPES)] = 1.0
    return out


def param_features(key: OpKey) -> np.ndarray:
    """The key's parameters (name=value) hashed into PARAM_SLOTS signed slots."""
    out = np.zeros(PARAM_SLOTS, dtype=np.float32)
    for name, value in key.params:
        digest = hashlib.sha256(f"{name}={value}".encode()).digest()
        out[digest[0] % PARAM_SLOTS] += 1.0 if digest[1] % 2 else -1.0
    return out


def device_features(key: OpKey) -> np.ndarray:
    """Stride class, compute capability (major.minor / 10) and log2 peak bandwidth / 13."""
    capability = float(key.capability[3:]) / 100 if key.capability.startswith("sm_") else 0.0
    bandwidth = next(gbps for name, gbps in BANDWIDTH_GBPS if name in key.device)
    return np.array([key.strides == "contiguous", capability, math.log2(bandwidth) / 13], dtype=np.float32)
