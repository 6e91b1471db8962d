"""Bags written as lists of rows, as the batched ops take them, and their independent float64 pooling matrices
(shared by the stack tests of the family and of the pattern ops)."""
import torch


def bag_tensors(bags_per_table, index_dtype=torch.int64, include_last_offset=False):
    """Per table (each a list of bags, each a list of rows): indices and offsets (with the index count appended
    under include_last_offset)."""
    indices, offsets = [], []
    for bags in bags_per_table:
        starts = [sum(len(b) for b in bags[:s]) for s in range(len(bags))]
        flat = [row for bag in bags for row in bag]
        indices.append(torch.tensor(flat, dtype=index_dtype))
        offsets.append(torch.tensor(starts + [len(flat)] * include_last_offset, dtype=index_dtype))
    return indices, offsets


def pooling(bags, rows, mode):
    """[bags, rows] float64: how many times each bag names each row, over the bag's size in mean mode (mode 1; an
    empty bag's row is zero)."""
    matrix = torch.zeros(len(bags), rows, dtype=torch.float64)
    for s, bag in enumerate(bags):
        for row in bag:
            matrix[s, row] += 1.0
        if mode == 1 and bag:
            matrix[s] /= len(bag)
    return matrix
