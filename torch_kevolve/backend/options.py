"""KevolveOptions: the one place where the backend's user options are declared, typed and validated."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..cache.store import default_cache_dir

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class KevolveOptions:
    """Options accepted by `torch.compile(..., backend="kevolve", options={...})`.

    cache_dir: user kernel cache directory (created if missing).
    shipped_cache: also use the reviewed winners shipped in the package.
    fallback: a kernel that fails to build or verify leaves its node to Inductor, and a forward or backward graph
        whose compile with kevolve's kernels fails is compiled by Inductor alone, with a warning (False: raise).
    verify: before swapping a kernel in, run it once on fresh inputs against the float64 reference.
    interpret: force our Triton kernel on every node a family accepts, whatever the cache says
        (on CPU they run in the Triton interpreter); for testing the graph rewrite, not for speed.
    families: restrict kevolve to these family names (None: all).
    patterns: before AOTAutograd, replace multi-node patterns (the DLRM dot interaction, WuKong's FM product,
        groups of embedding bags) by kevolve pattern ops, which families implement; where none claims one it
        is decomposed back to its ATen pattern; and after autograd, offer epilogue patterns (a linear layer
        and its ReLU, MBDT's clamped bucket ids, MapId's lookup) to the cache as one call.
    transfer: on a cache miss, try the winner of the nearest solved key of the same overload (within
        transfer_distance, the cosine distance of their retrieval vectors), checked on the new key first.
    """

    cache_dir: Path = field(default_factory=default_cache_dir)
    shipped_cache: bool = True
    fallback: bool = True
    verify: bool = False
    interpret: bool = False
    families: tuple[str, ...] | None = None
    patterns: bool = True
    transfer: bool = False
    transfer_distance: float = 1e-3

    @staticmethod
    def from_user(options: dict | None) -> "KevolveOptions":
        """Validate a user's options dict; ValueError names any unknown option or wrong type."""
        options = dict(options or {})
        known = {f.name for f in dataclasses.fields(KevolveOptions)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"kevolve: unknown option(s) {', '.join(map(repr, unknown))}; known options: {', '.join(sorted(known))}"
            )
        values = {}
        for name, value in options.items():
            if name == "cache_dir":
                if not isinstance(value, (str, Path)):
                    raise ValueError(f"kevolve: option 'cache_dir' must be a path, got {type(value).__name__}")
                value = Path(value).expanduser()
            elif name == "families":
                if value is not None:
                    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                        raise ValueError("kevolve: option 'families' must be a list of family names or None")
                    value = tuple(value)
            elif name == "transfer_distance":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 2:
                    raise ValueError(f"kevolve: option 'transfer_distance' must be a number in (0, 2], got {value!r}")
                value = float(value)
            elif not isinstance(value, bool):
                raise ValueError(f"kevolve: option {name!r} must be a bool, got {value!r}")
            values[name] = value
        return KevolveOptions(**values)

    def fingerprint(self) -> str:
        """Stable text of the options, for the Inductor cache key."""
        d = dataclasses.asdict(self)
        d["cache_dir"] = str(self.cache_dir)
        return json.dumps(d, sort_keys=True, default=list)
