"""OpKey: the identity of a kernel problem (operator, parameters, dtypes, shape bucket, strides, device)."""
from __future__ import annotations

import functools
import hashlib
import json
import platform
from dataclasses import dataclass, field

import torch


def bucket(n: int) -> int:
    """Round a dimension up to the next power of two (0 and 1 stay as they are)."""
    return n if n <= 1 else 1 << (n - 1).bit_length()


@dataclass(frozen=True)
class Problem:
    """One concrete problem of a family: exact dims, parameters and dtypes, as seen on a graph node.

    `exact_dims` names the dims a kernel is specialised on (kept exact in the key); every other
    dim is bucketed to a power of two.
    """

    family: str
    op: str
    params: tuple[tuple[str, object], ...]
    dims: tuple[tuple[str, int], ...]
    dtypes: tuple[tuple[str, str], ...]
    exact_dims: frozenset[str] = field(default_factory=frozenset)
    contiguous: bool = True

    def param(self, name: str):
        return dict(self.params)[name]

    def dim(self, name: str) -> int:
        return dict(self.dims)[name]

    def dtype(self, name: str) -> torch.dtype:
        return getattr(torch, dict(self.dtypes)[name])

    def bucketed(self) -> "Problem":
        """The representative problem of this one's shape bucket (every non-exact dim rounded up)."""
        dims = tuple((n, v if n in self.exact_dims else bucket(v)) for n, v in self.dims)
        return Problem(self.family, self.op, self.params, dims, self.dtypes, self.exact_dims, self.contiguous)

    def to_dict(self) -> dict:
        """JSON form (parameter values must be JSON scalars); `from_dict` inverts it."""
        return {
            "family": self.family,
            "op": self.op,
            "params": [list(p) for p in self.params],
            "dims": [list(d) for d in self.dims],
            "dtypes": [list(d) for d in self.dtypes],
            "exact_dims": sorted(self.exact_dims),
            "contiguous": self.contiguous,
        }

    @staticmethod
    def from_dict(d: dict) -> "Problem":
        return Problem(
            family=d["family"],
            op=d["op"],
            params=tuple((k, v) for k, v in d["params"]),
            dims=tuple((k, int(v)) for k, v in d["dims"]),
            dtypes=tuple((k, v) for k, v in d["dtypes"]),
            exact_dims=frozenset(d["exact_dims"]),
            contiguous=bool(d["contiguous"]),
        )


@dataclass(frozen=True)
class DeviceInfo:
    """The device a kernel runs on: type, product name, compute capability."""

    type: str
    name: str
    capability: str

    @staticmethod
    def of(device: torch.device | str) -> "DeviceInfo":
        device = torch.device(device)
        if device.type == "cuda":
            major, minor = torch.cuda.get_device_capability(device)
            return DeviceInfo("cuda", torch.cuda.get_device_name(device), f"sm_{major}{minor}")
        return DeviceInfo(device.type, _cpu_name() if device.type == "cpu" else device.type, "")


@functools.cache
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class OpKey:
    """Cache key: a problem's bucket on one device. `id` is its stable text form."""

    family: str
    op: str
    params: tuple[tuple[str, object], ...]
    dtypes: tuple[tuple[str, str], ...]
    shape: tuple[tuple[str, int], ...]
    strides: str
    device: str
    capability: str

    @staticmethod
    def of(problem: Problem, device: DeviceInfo) -> "OpKey":
        b = problem.bucketed()
        return OpKey(
            family=problem.family,
            op=problem.op,
            params=problem.params,
            dtypes=problem.dtypes,
            shape=b.dims,
            strides="contiguous" if problem.contiguous else "strided",
            device=device.name,
            capability=device.capability,
        )

    def to_dict(self) -> dict:
        return {
            "family": self.family,
            "op": self.op,
            "params": [list(p) for p in self.params],
            "dtypes": [list(d) for d in self.dtypes],
            "shape": [list(s) for s in self.shape],
            "strides": self.strides,
            "device": self.device,
            "capability": self.capability,
        }

    @staticmethod
    def from_dict(d: dict) -> "OpKey":
        return OpKey(
            family=d["family"],
            op=d["op"],
            params=tuple((k, v) for k, v in d["params"]),
            dtypes=tuple((k, v) for k, v in d["dtypes"]),
            shape=tuple((k, int(v)) for k, v in d["shape"]),
            strides=d["strides"],
            device=d["device"],
            capability=d["capability"],
        )

    @property
    def id(self) -> str:
        """Canonical text of the key, usable as a primary key."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.id.encode()).hexdigest()[:16]

    def short(self) -> str:
        """One line for people: op, params, dtypes, shape bucket, device."""
        params = ",".join(f"{k}={v}" for k, v in self.params)
        dtypes = ",".join(v for _, v in self.dtypes)
        shape = ",".join(f"{k}={v}" for k, v in self.shape)
        return f"{self.op}[{params}] {dtypes} ({shape}) {self.strides} @ {self.device} {self.capability}".rstrip()
