"""opaque_compute: every device calls through the registered op (off CPU a traced graph holds the op,
not the kernel); the launcher runs with wrap_triton's tracing hooks off."""
from dataclasses import dataclass

import torch
from torch._library.triton import is_wrap_triton_enabled

from torch_kevolve.families.custom_call import named_kernel_call
from torch_kevolve.families.opaque_call import opaque_compute, unwrapped

launched = []


@dataclass
class ScaleCall:
    scale: float

    def params(self) -> dict:
        return {"scale": self.scale}

    @staticmethod
    def from_params(params: dict) -> "ScaleCall":
        return ScaleCall(params["scale"])


def _run(t, call, genome):
    launched.append((t["x"].device.type, is_wrap_triton_enabled()))
    return [t["x"] * call.scale + genome["shift"]]


def _allocate(t, call):
    return [torch.empty_like(t["x"])]


named_kernel_call("test_opaque_affine", ("x",), ScaleCall.from_params, unwrapped(_run), _allocate)
compute = opaque_compute(torch.ops.kevolve.test_opaque_affine, ("x",))


def test_cpu_calls_run_the_launcher_with_tracing_hooks_off():
    launched.clear()
    (out,) = compute({"x": torch.arange(3.0)}, ScaleCall(2.0), {"shift": 1.0})
    torch.testing.assert_close(out, torch.tensor([1.0, 3.0, 5.0]))
    assert launched == [("cpu", False)]


def test_other_devices_go_through_the_op_too():
    launched.clear()
    (out,) = compute({"x": torch.empty(3, device="meta")}, ScaleCall(2.0), {"shift": 1.0})
    assert launched == [] and out.device.type == "meta" and out.shape == (3,)


def test_dynamo_traces_the_call_in_one_graph_with_its_params_as_a_constant():
    def scaled(x, scale):
        return compute({"x": x}, ScaleCall(scale), {"shift": 1.0})[0]

    compiled = torch.compile(scaled, fullgraph=True, dynamic=False, backend="eager")
    torch.testing.assert_close(compiled(torch.arange(3.0), 2.0), torch.tensor([1.0, 3.0, 5.0]))
    torch.testing.assert_close(compiled(torch.arange(3.0), 3.0), torch.tensor([1.0, 4.0, 7.0]))
