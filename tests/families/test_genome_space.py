"""GenomeSpace.by_changes against the space's own order, and the default genome it finds against the brute-force
definition (the supported genome changing the fewest genes of the default, the first such in space order)."""
import random

from torch_kevolve.families.base import Abstraction, GenomeSpace, Implementation

SPACE = GenomeSpace((("BLOCK", (64, 32, 128)), ("warps", (4, 8)), ("stages", (1, 2, 3)), ("split", (1,))))


def _changes(genome: dict) -> int:
    default = SPACE.default()
    return sum(genome[name] != default[name] for name in default)


def test_by_changes_is_the_space_in_stable_order_of_changes():
    assert list(SPACE.by_changes()) == sorted(SPACE, key=_changes)  # sorted is stable: space order among equals
    assert len(list(SPACE.by_changes())) == len(SPACE) == 18


def test_the_default_genome_is_the_nearest_supported_one_first_in_space_order():
    rng = random.Random(0)
    for trial in range(200):
        allowed = [g for g in SPACE if rng.random() < 0.3 * (trial % 4)]
        impl = Implementation("t", Abstraction.TRITON, SPACE, lambda p, g: None,
                              lambda p, g: None if g in allowed else "refused", ())
        want = min(allowed, key=_changes) if allowed else None
        assert impl.default_genome(None) == want
