"""KernelRecord: one measured kernel for one OpKey, and its strict JSON form."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import time
import types
import typing
from dataclasses import dataclass

import torch

from ..families.base import Implementation, KernelFamily
from ..key import OpKey
from .errors import CacheError


@functools.cache
def torch_version() -> str:
    """The running torch version without its local part (2.13.0+cpu -> 2.13.0)."""
    return torch.__version__.split("+")[0]


@functools.cache
def triton_version() -> str:
    """The running triton version."""
    import triton

    return triton.__version__


TIE_FITNESS = 1.03  # at most this fitness, a kernel ties with Inductor: measured again on another H100, shipped
# records moved by up to 0.03 (benchmarks/results, twenty-seventh session), and a MapId record tuned at 1.02 ran at
# 0.88 of Inductor's kernel time in the next measurement (twenty-eighth session)


@dataclass(frozen=True)
class KernelRecord:
    """A kernel measured on `key`: fitness = t_ref_us / t_cand_us; fitness <= 1 records that Inductor wins, and
    fitness up to TIE_FITNESS a tie, which leaves the node to Inductor too."""

    key: OpKey
    implementation: str
    abstraction: str
    genome: dict
    source: str
    source_sha256: str
    t_ref_us: float
    t_cand_us: float
    fitness: float
    achieved_gbps: float | None
    family_version: str
    torch_version: str
    triton_version: str
    created: float
    stats: dict

    @property
    def wins(self) -> bool:
        """Faster than Inductor by more than measuring again moves the fitness: worth running in its place."""
        return self.fitness > TIE_FITNESS

    @property
    def verdict(self) -> str:
        """What the record says against Inductor: "kevolve faster" (it runs), "a tie with Inductor" or "Inductor
        faster" (the node stays Inductor's)."""
        if self.wins:
            return "kevolve faster"
        return "a tie with Inductor" if self.fitness > 1 else "Inductor faster"

    @classmethod
    def measured(
        cls,
        key: OpKey,
        family: KernelFamily,
        implementation: Implementation,
        genome: dict,
        t_ref_us: float,
        t_cand_us: float,
        *,
        achieved_gbps: float | None = None,
        stats: dict | None = None,
    ) -> KernelRecord:
        """A record of `implementation` with `genome` on `key`, stamped with its source and this process's versions."""
        if key.family != family.name:
            raise ValueError(f"key of family {key.family!r} cannot hold a kernel of family {family.name!r}")
        source = implementation.source()
        return cls(
            key=key,
            implementation=implementation.name,
            abstraction=implementation.abstraction.value,
            genome=dict(genome),
            source=source,
            source_sha256=_sha256(source),
            t_ref_us=float(t_ref_us),
            t_cand_us=float(t_cand_us),
            fitness=t_ref_us / t_cand_us,
            achieved_gbps=achieved_gbps,
            family_version=family.version,
            torch_version=torch_version(),
            triton_version=triton_version(),
            created=time.time(),
            stats=dict(stats or {}),
        )

    def hash_ok(self) -> bool:
        """Whether `source` still hashes to `source_sha256`."""
        return _sha256(self.source) == self.source_sha256

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["key"] = self.key.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: object) -> KernelRecord:
        """The record `d` describes; CacheError naming the field when one is missing, extra or of the wrong type."""
        if not isinstance(d, dict):
            raise CacheError(f"kernel record must be a JSON object, got {type(d).__name__}")
        hints = typing.get_type_hints(cls)
        missing, extra = sorted(set(hints) - set(d)), sorted(set(d) - set(hints))
        if missing:
            raise CacheError(f"kernel record is missing field(s) {', '.join(missing)}")
        if extra:
            raise CacheError(f"kernel record has unexpected field(s) {', '.join(extra)}")
        values = {name: _checked(name, d[name], hint) for name, hint in hints.items() if name != "key"}
        return cls(key=_key(d["key"]), **values)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _key(d: object) -> OpKey:
    fields = {f.name for f in dataclasses.fields(OpKey)}
    if not isinstance(d, dict) or set(d) != fields:
        raise CacheError(f"kernel record field 'key' must be an object with fields {', '.join(sorted(fields))}")
    try:
        key = OpKey.from_dict(d)
    except (TypeError, ValueError) as e:
        raise CacheError(f"kernel record field 'key' is malformed: {e}") from None
    for name in ("family", "op", "strides", "device", "capability"):
        if not isinstance(getattr(key, name), str):
            raise CacheError(f"kernel record field 'key.{name}' must be str")
    return key


def _checked(name: str, value: object, hint: object) -> object:
    """`value` as the type `hint` names (ints accepted for floats); CacheError if it is not one."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return None
    if float in allowed and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if any(t in (str, dict) and isinstance(value, t) for t in allowed):
        return value
    expected = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise CacheError(f"kernel record field {name!r} must be {expected}, got {type(value).__name__}")
