"""kernel_call: CPU calls run the launcher through the registered op (one opaque node in traced CPU graphs);
on other devices the launcher is called directly."""
import torch

from torch_kevolve.families.custom_call import kernel_call

launched = []


def _run(tensors, params):
    launched.append(tensors[0].device.type)
    return [tensors[0] * params["scale"]]


def _allocate(tensors, params):
    return [torch.empty_like(tensors[0])]


scale = kernel_call("test_scale", _run, _allocate)


def test_cpu_calls_run_the_launcher_through_the_op():
    launched.clear()
    (out,) = scale([torch.arange(3.0)], {"scale": 2.0})
    torch.testing.assert_close(out, torch.tensor([0.0, 2.0, 4.0]))
    graph = torch.fx.experimental.proxy_tensor.make_fx(lambda x: scale([x], {"scale": 2.0})[0])(torch.arange(3.0))
    targets = [str(n.target) for n in graph.graph.nodes if n.op == "call_function"]
    assert targets[0] == "kevolve.test_scale.default" and "mul" not in " ".join(targets)
    assert launched[0] == "cpu"


def test_other_devices_call_the_launcher_directly():
    launched.clear()
    (out,) = scale([torch.empty(3, device="meta")], {"scale": 2.0})
    assert launched == ["meta"] and out.device.type == "meta"
