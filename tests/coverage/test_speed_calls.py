"""Every claimed overload has a problem for the GPU speed table, benchmark-sized where OpInfo's are tiny."""
from benchmarks.coverage_gpu import benchmark_problem
from benchmarks.speed_calls import benchmark_calls
from torch_kevolve.families import FAMILIES, family_for


def test_every_claimed_overload_has_a_speed_problem():
    assert [str(o) for f in FAMILIES for o in f.overloads if benchmark_problem(f, o) is None] == []


def test_benchmark_calls_are_claimed_at_benchmark_size():
    for overload, args in benchmark_calls().items():
        problem = family_for(overload).problem(overload, args, {})
        assert max(dict(problem.dims).values()) >= 1000, overload
