"""A small jagged model (NJT to_padded_tensor and segment_reduce of every supported reduction) trained
under backend="kevolve" in interpret mode: our kernels replace the jagged and segment nodes of both the
forward and the backward graph, and losses and gradients match eager."""
import copy

import torch

from torch_kevolve.backend.decisions import collect_decisions

JAGGED_OPS = {"aten._jagged_to_padded_dense_forward.default", "aten._padded_dense_to_jagged_forward.default"}
SEGMENT_OPS = {"aten.segment_reduce.default", "aten._segment_reduce_backward.default"}


class JaggedPooling(torch.nn.Module):
    """Projects packed rows, pads them per segment, and pools segments by sum, mean, max and min."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, values, offsets, lengths):
        h = self.proj(values)
        padded = torch.nested.nested_tensor_from_jagged(h, offsets).to_padded_tensor(0.5)
        loss = (padded * padded).mean()
        for reduce, initial in (("sum", None), ("mean", 1.0), ("max", None), ("min", -2.0)):
            pooled = torch.segment_reduce(h, reduce, lengths=lengths, initial=initial)
            loss = loss + (pooled.nan_to_num(0.0, 0.0, 0.0) ** 2).mean()
        return loss


def test_jagged_and_segment_nodes_are_rewritten_and_match_eager(tmp_path):
    torch._dynamo.reset()
    torch.manual_seed(0)
    lengths = torch.tensor([2, 0, 3, 1])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    values = torch.randn(int(lengths.sum()), 4)
    model = JaggedPooling(4)
    twin = copy.deepcopy(model)
    want = model(values, offsets, lengths)
    want.backward()
    compiled = torch.compile(twin, backend="kevolve", options={"interpret": True, "cache_dir": str(tmp_path)})
    with collect_decisions() as decisions:
        got = compiled(values, offsets, lengths)
        got.backward()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for g, w in zip(twin.parameters(), model.parameters()):
        torch.testing.assert_close(g.grad, w.grad, rtol=1e-4, atol=1e-6)
    claimed = {(d.graph, d.op) for d in decisions if d.claimed}
    assert {("forward", "aten._jagged_to_padded_dense_forward.default"),
            ("backward", "aten._padded_dense_to_jagged_forward.default")} <= claimed
    assert {("forward", "aten.segment_reduce.default"), ("backward", "aten._segment_reduce_backward.default")} <= claimed
    left = [(d.op, d.reason) for d in decisions if not d.claimed and d.op in JAGGED_OPS | SEGMENT_OPS]
    assert left == []
