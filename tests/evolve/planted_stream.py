"""A planted candidate that computes on a side CUDA stream (its own module: static checks refuse the whole source)."""
import torch

from torch_kevolve.families.base import Abstraction, GenomeSpace, Implementation


def _build(problem, genome):
    def row_sum(x, dim, keepdim=False):
        stream = torch.cuda.Stream()
        with torch.cuda.stream(stream):
            return torch.mv(x, torch.ones(x.shape[1], device=x.device))

    return row_sum


SIDE_STREAM = Implementation(name="side_stream", abstraction=Abstraction.DECOMPOSITION, genome_space=GenomeSpace(()),
                             build=_build, supports=lambda problem, genome: None, source_modules=(__name__,))
