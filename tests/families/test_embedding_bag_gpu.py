"""The embedding-bag families on a CUDA device: float64 CPU reference, ATen's CUDA layouts, our aux
accepted by ATen's CUDA backward, and no host synchronisation. Skipped without a GPU."""
import itertools

import pytest
import torch

from torch_kevolve.families import EMBEDDING_BAG, EMBEDDING_BAG_BACKWARD
from torch_kevolve.families.base import DISTRIBUTIONS
from torch_kevolve.families.embedding_bag import inputs

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
aten = torch.ops.aten
CUDA = torch.device("cuda")
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
FLAGS = ((False, False, torch.int64), (True, True, torch.int32))  # (padding_idx set, include_last_offset, index dtype)


def forward_problem(mode, dtype, psw, padding, ilo, index_dtype, num_bags=50, dim=128, num_weights=300):
    n = 6 * num_bags
    args = (torch.empty(num_weights, dim, dtype=dtype), torch.zeros(n, dtype=index_dtype),
            torch.zeros(num_bags + ilo, dtype=index_dtype), False, mode, False,
            torch.empty(n, dtype=dtype) if psw else None, ilo, 3 if padding else -1)
    return EMBEDDING_BAG.problem(aten._embedding_bag.default, args, {})


def backward_problem(overload, mode, dtype, psw, padding, ilo, index_dtype, num_bags=50, dim=128, num_weights=300):
    n = 6 * num_bags
    grad, indices = torch.empty(num_bags, dim, dtype=dtype), torch.zeros(n, dtype=index_dtype)
    max_indices = torch.zeros((num_bags, dim) if mode == 2 else (num_bags,), dtype=index_dtype)
    rest = (num_weights, False, mode)
    psw_arg = torch.empty(n, dtype=dtype) if psw else None
    bag_size = torch.zeros(num_bags, dtype=index_dtype)
    if overload is aten._embedding_bag_dense_backward.default:
        args = (grad, indices, indices, bag_size, max_indices, *rest, psw_arg, 3 if padding else -1)
    else:
        offsets = torch.zeros(num_bags + ilo, dtype=index_dtype)
        args = (grad, indices, offsets, indices, bag_size, max_indices, *rest, False, psw_arg, 3 if padding else -1)
    return EMBEDDING_BAG_BACKWARD.problem(overload, args, {})


def some_genomes(impl, problem):
    """The default-most supported genome, and for the backward the first sorted one too."""
    genomes = impl.genomes(problem)
    chosen = genomes[:1] + [g for g in genomes if g.get("algorithm") == "sorted"][:1]
    return chosen + [genomes[len(genomes) // 2]]


@pytest.mark.parametrize("mode,dtype,flags", list(itertools.product((0, 1, 2), DTYPES, FLAGS)))
def test_forward_on_cuda(mode, dtype, flags, assert_matches):
    problem = forward_problem(mode, dtype, mode == 0, *flags)
    for impl in EMBEDDING_BAG.implementations:
        for genome in some_genomes(impl, problem):
            run = impl.build(problem, genome)
            for seed, dist in enumerate(DISTRIBUTIONS):
                args = EMBEDDING_BAG.make_inputs(problem, seed, dist, CUDA)
                ours, theirs = run(*args), aten._embedding_bag(*args)
                for a, b in zip(ours, theirs):
                    assert (a.shape, a.dtype, a.stride()) == (b.shape, b.dtype, b.stride())
                reference = EMBEDDING_BAG.reference(problem, args)
                reach = inputs.longest_bag(args[2].cpu(), problem.dim("num_bags"), problem.dim("num_indices"))
                scale = args[0].abs().max().item() * (1.0 if args[6] is None else args[6].abs().max().item())
                assert_matches(ours[0].cpu(), reference[0], reach, scale, exact=mode == 2)
                for i in EMBEDDING_BAG.checked_outputs(problem)[1:]:
                    assert_matches(ours[i].cpu(), reference[i])
                if mode == 2 and dtype == torch.bfloat16:
                    continue  # ATen CUDA has no bf16 max-mode backward
                grad = torch.randn(problem.dim("num_bags"), problem.dim("dim"), dtype=dtype, device=CUDA)
                flags_ = (problem.dim("num_weights"), False, mode, False, args[6], args[8])
                got = aten._embedding_bag_backward(grad, args[1], args[2], *ours[1:], *flags_)
                want = aten._embedding_bag_backward(grad, args[1], args[2], *theirs[1:], *flags_)
                # ATen's CUDA max backward adds in the grad dtype with atomics: order-dependent rounding.
                assert_matches(got.cpu(), want.cpu().double(), inputs.most_repeats(args[1].cpu()), grad.abs().max().item())


@pytest.mark.parametrize("overload", [aten._embedding_bag_backward.default, aten._embedding_bag_dense_backward.default])
@pytest.mark.parametrize("mode,dtype,flags", list(itertools.product((0, 1, 2), DTYPES, FLAGS)))
def test_backward_on_cuda(overload, mode, dtype, flags, assert_matches):
    problem = backward_problem(overload, mode, dtype, mode == 0, *flags)
    for impl in EMBEDDING_BAG_BACKWARD.implementations:
        for genome in some_genomes(impl, problem):
            run = impl.build(problem, genome)
            for seed, dist in enumerate(DISTRIBUTIONS):
                args = EMBEDDING_BAG_BACKWARD.make_inputs(problem, seed, dist, CUDA)
                gradient = run(*args)
                (reference,) = EMBEDDING_BAG_BACKWARD.reference(problem, args)
                scale = args[0].abs().max().item() * (1.0 if args[-2] is None else args[-2].abs().max().item())
                assert gradient.shape == reference.shape and gradient.dtype == dtype and gradient.is_contiguous()
                assert_matches(gradient.cpu(), reference, inputs.most_repeats(args[1].cpu()), scale)


def test_no_host_synchronisation():
    fwd = forward_problem(1, torch.float32, False, True, False, torch.int64)
    bwd = backward_problem(aten._embedding_bag_backward.default, 1, torch.float32, False, True, False, torch.int64)
    for family, problem in ((EMBEDDING_BAG, fwd), (EMBEDDING_BAG_BACKWARD, bwd)):
        args = family.make_inputs(problem, 0, "normal", CUDA)
        for impl in family.implementations:
            for genome in some_genomes(impl, problem):
                run = impl.build(problem, genome)
                run(*args)
                torch.cuda.synchronize()
                torch.cuda.set_sync_debug_mode("error")
                try:
                    run(*args)
                finally:
                    torch.cuda.set_sync_debug_mode(0)
