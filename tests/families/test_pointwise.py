"""The pointwise family: registry, generated source, and ATen's contract (values, dtype, shape,
strides, in-place / out aliasing) on promotion, broadcasting, 0-d tensors, scalars and strides."""
import hashlib
from pathlib import Path

import pytest
import torch

from torch_kevolve.families import POINTWISE, family_for
from torch_kevolve.families.base import Unsupported
from torch_kevolve.families.pointwise import codegen
from torch_kevolve.families.pointwise.table import OPS
from torch_kevolve.families.schema import schema_values

aten = torch.ops.aten
GENOME = dict(BLOCK=256, num_warps=4)


def run(overload, *args, **kwargs):
    values = schema_values(overload, args, kwargs)
    problem = POINTWISE.problem(overload, values, {})
    return POINTWISE.implementation("pointwise_triton").build(problem, GENOME)(*values)


def test_registry_and_generated_source():
    assert family_for(aten.add.Tensor) is POINTWISE and family_for(aten.gelu_backward.grad_input) is POINTWISE
    assert len(POINTWISE.overloads) == len(set(POINTWISE.overloads)) >= 160
    module = codegen.generated_module()
    text = Path(module.__file__).read_text()
    assert Path(module.__file__).stem == f"kernels_{hashlib.sha256(text.encode()).hexdigest()}"
    assert all(f"def {op.name}_kernel(" in text for op in OPS)
    assert POINTWISE.implementation("pointwise_triton").source_sha256()


CALLS = [
    (aten.add.Tensor, (torch.randn(4, 1, 5), torch.randn(3, 5)), {"alpha": 2}),  # broadcasting
    (aten.add.Tensor, (torch.randn(5, 4).t(), torch.randn(4, 5)), {}),  # transposed input
    (aten.mul.Tensor, (torch.randn(6, 8)[:, ::2], torch.tensor(3.0)), {}),  # sliced, 0-d
    (aten.mul.Tensor, (torch.randint(0, 9, (7,)), torch.randn(7, dtype=torch.bfloat16)), {}),  # int * bf16
    (aten.div.Tensor, (torch.randint(1, 9, (7,)), torch.randint(1, 9, (7,))), {}),  # int / int -> float
    (aten.lt.Scalar, (torch.randn(9, dtype=torch.float16), 0.25), {}),
    (aten.where.self, (torch.rand(3, 4) > 0.5, torch.randn(3, 4), torch.randn(4, dtype=torch.float16)), {}),
    (aten.clamp.default, (torch.randn(10), None, 0.5), {}),
    (aten.exp.default, (torch.randn(()),), {}),  # 0-d
    (aten.bitwise_xor.Scalar, (torch.randint(0, 100, (8,), dtype=torch.int16), 7), {}),
    (aten.gelu.default, (torch.randn(2, 3, 4, 5, 6, 7),), {"approximate": "tanh"}),  # rank 6
]


@pytest.mark.parametrize("overload, args, kwargs", CALLS, ids=[str(c[0]) for c in CALLS])
def test_functional_calls_match_aten(overload, args, kwargs):
    got, want = run(overload, *args, **kwargs), overload(*args, **kwargs)
    assert (got.dtype, got.shape, got.stride()) == (want.dtype, want.shape, want.stride())
    torch.testing.assert_close(got, want, rtol=1.6e-2, atol=1e-5)


def test_in_place_and_out_write_their_destination():
    x, y = torch.randn(4, 5), torch.randn(5)
    want = x + y
    assert run(aten.add_.Tensor, x, y) is x
    torch.testing.assert_close(x, want)
    out = torch.empty(5, 4, dtype=torch.float16).t()
    assert run(aten.sigmoid.out, x, out=out) is out
    torch.testing.assert_close(out, torch.sigmoid(x).half())


@pytest.mark.parametrize("overload, args, reason", [
    (aten.mul.Tensor, (torch.ones(2, dtype=torch.complex64), torch.ones(2, dtype=torch.complex64)), "complex"),
    (aten.exp.default, (torch.ones(2, dtype=torch.float64),), "float64"),
    (aten.bitwise_and.Tensor, (torch.ones(2), torch.ones(2)), "integral"),
    (aten.add_.Tensor, (torch.ones(2, dtype=torch.int64), torch.ones(2)), "ATen refuses"),
    (aten.add_.Tensor, (torch.ones(1, 2), torch.ones(3, 2)), "shape"),
    (aten.gelu.default, (torch.ones(2), "cubic"), "approximate"),
    (aten.mm.default, (torch.ones(2, 2), torch.ones(2, 2)), "not a pointwise overload"),
])
def test_calls_outside_the_family_are_unsupported_with_a_reason(overload, args, reason):
    with pytest.raises(Unsupported, match=reason):
        POINTWISE.problem(overload, args, {})
