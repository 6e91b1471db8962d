"""The stack forms on a CUDA device, at a DLRM-like size (26 tables, bags of 20, one head), compiled by Inductor as
in a model: the forward's stack against ATen's float64 CPU embedding bags stacked behind the head, the runs and
fill-runs backwards' weight gradients, read from the stack's gradient in place, against ATen's float64 CPU backward of
each table's slice. Skipped without a GPU."""
import pytest
import torch
import torch.nn.functional as F

from torch_kevolve.families import EMBEDDING_BAGS, EMBEDDING_BAGS_BACKWARD, LAYOUT_FORMS
from torch_kevolve.families.embedding_bags.calls import BACKWARD, FORWARD

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
STACK = torch.ops.kevolve.embedding_bags_stack.default
STACK_BACKWARD = torch.ops.kevolve.embedding_bags_stack_backward.default
TABLES, ROWS, DIM, SAMPLES, POOLING = 26, 1000, 128, 512, 20
FORWARD_GENOME = dict(BLOCK_N=32, BLOCK_D=128, BAGS_PER_PROGRAM=1, num_warps=1, num_stages=1)
RUNS_GENOME = dict(BLOCK_N=8, BLOCK_D=128, ITEMS_PER_PROGRAM=4, num_warps=1, num_stages=1)


def bags(device, span=ROWS):
    """Per table: SAMPLES bags of POOLING row ids drawn from rows [0, span)."""
    g = torch.Generator().manual_seed(0)
    indices = [torch.randint(0, span, (SAMPLES * POOLING,), generator=g).to(device) for _ in range(TABLES)]
    offsets = [torch.arange(0, SAMPLES * POOLING, POOLING, device=device) for _ in range(TABLES)]
    return indices, offsets


@pytest.mark.parametrize("mode", [0, 1])
def test_the_forward_fills_the_stack(mode):
    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(ROWS, DIM, generator=g) for _ in range(TABLES)]
    head = torch.randn(SAMPLES, DIM, generator=g)
    indices, offsets = bags("cpu")
    want = torch.stack([head.double()] + [F.embedding_bag(i, w.double(), o, mode=("sum", "mean")[mode])
                                          for i, w, o in zip(indices, weights, offsets)], 1)
    cuda = [[t.cuda() for t in ts] for ts in (weights, indices, offsets)]
    problem = EMBEDDING_BAGS.problem(FORWARD, (*cuda, mode, False), {})
    stack = torch.compile(LAYOUT_FORMS[STACK, "embedding_bags_triton"].build(problem, FORWARD_GENOME), dynamic=False)
    got = stack([head.cuda()], *cuda, mode, False)
    torch.testing.assert_close(got.double().cpu(), want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("implementation,span", [("embedding_bags_backward_runs", ROWS),
                                                 ("embedding_bags_backward_fill_runs", ROWS),
                                                 ("embedding_bags_backward_fill_runs", ROWS // 8)])
@pytest.mark.parametrize("mode", [0, 1])
def test_the_bag_tile_backwards_read_the_stacks_gradient_in_place(mode, implementation, span):
    """span ROWS // 8: each table's last 875 rows untouched, a gap fill_runs hands to its listed-gap kernel."""
    g = torch.Generator().manual_seed(2)
    grad = torch.randn(SAMPLES, 1 + TABLES, DIM, generator=g)
    indices, offsets = bags("cpu", span)
    want = [torch.ops.aten._embedding_bag_backward(grad[:, 1 + t].double(), i, o, *_bag_aux(i, o), ROWS, False, mode,
                                                   False, None, -1) for t, (i, o) in enumerate(zip(indices, offsets))]
    cuda_grad, cuda_indices, cuda_offsets = grad.cuda(), [i.cuda() for i in indices], [o.cuda() for o in offsets]
    grads = [cuda_grad.select(1, 1 + t) for t in range(TABLES)]
    problem = EMBEDDING_BAGS_BACKWARD.problem(BACKWARD, (grads, cuda_indices, cuda_offsets, [ROWS] * TABLES, mode,
                                                         False), {})
    backward = torch.compile(LAYOUT_FORMS[STACK_BACKWARD, implementation].build(problem, RUNS_GENOME), dynamic=False)
    got = backward(cuda_grad, 1, cuda_indices, cuda_offsets, [ROWS] * TABLES, mode, False)
    for t, (g_t, w_t) in enumerate(zip(got, want)):
        torch.testing.assert_close(g_t.double().cpu(), w_t, rtol=1e-5, atol=1e-4, msg=f"table {t}")


def _bag_aux(indices, offsets):
    """(offset2bag, bag_size, max_indices) of bags of POOLING indices each, as the forward hands them to autograd."""
    offset2bag = torch.arange(indices.numel()) // POOLING
    return offset2bag, torch.full((offsets.numel(),), POOLING), torch.zeros(offsets.numel(), dtype=torch.long)
