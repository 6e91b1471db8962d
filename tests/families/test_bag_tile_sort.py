"""backward_sweep.sort_slots (the Triton interpreter) against an enumeration of every (row, bag) pair the indices
name: each row's slots hold exactly the bags that name it (as many times as they do), numbered by the sort's
BagLayout (consecutive, or strided as the stack forms number the rows of the stack's gradient); the stacked sort's
keys carry each slot's row, mean mode's scales each slot's 1 / bag size, and run_arrays splits the keys as
reduce_runs_kernel reads them; bad layouts are refused."""
from collections import Counter

import pytest
import torch

from torch_kevolve.families.embedding_bags.backward_sweep import (MAX_SLOTS, BagLayout, consecutive_bags,
                                                                  run_arrays, sort_slots)
from tests.families.bag_references import bag_tensors

TABLES = [  # per table, its bags as lists of rows; an empty bag, a table whose bags name no row
    [[0, 2, 2], [], [1, 2], [4, 0, 0, 3]],
    [[], []],
    [[5, 5, 5, 5, 5, 1], [0], [6, 2, 1]],
]
NUM_WEIGHTS = [5, 3, 7]


def expected_pairs(layout: BagLayout | None):
    """Counter of (stacked row, bag number): table t's row r is row sum(NUM_WEIGHTS[:t]) + r, its bag b is b
    (table-local) or layout.bases[t] + b * layout.stride."""
    pairs = Counter()
    for t, bags in enumerate(TABLES):
        for b, bag in enumerate(bags):
            number = b if layout is None else layout.bases[t] + b * layout.stride
            pairs.update((sum(NUM_WEIGHTS[:t]) + row, number) for row in bag)
    return pairs


def slot_bags(slots):
    """Each slot's bag number: the table-local bags, or the low halves of the stacked keys."""
    return slots.bags.tolist() if slots.keys is None else (slots.keys & 0xFFFFFFFF).tolist()


def sorted_pairs(slots):
    """Counter of (row, bag) read from the sort: row r's slots are [firsts[r], firsts[r] + counts[r])."""
    bags, pairs = slot_bags(slots), Counter()
    for row, (first, count) in enumerate(zip(slots.firsts.tolist(), slots.counts.tolist())):
        pairs.update((row, bag) for bag in bags[first:first + count])
    return pairs


def table_grads(dim=4):
    """One zero grad per table (the sort reads only their bag counts)."""
    return [torch.zeros(len(bags), dim) for bags in TABLES]


def sort(mode, layout):
    indices, offsets = bag_tensors(TABLES)
    return sort_slots(table_grads(), indices, offsets, NUM_WEIGHTS, mode, layout)


@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("layout", [None, "consecutive", BagLayout([2, 3, 4], 5)])
def test_every_row_holds_the_bags_that_name_it(mode, layout):
    layout = consecutive_bags(table_grads()) if layout == "consecutive" else layout
    slots = sort(mode, layout)
    assert sorted_pairs(slots) == expected_pairs(layout)
    named = Counter(row for (row, _), times in expected_pairs(None).items() for _ in range(times))
    assert slots.counts.tolist() == [named[row] for row in range(sum(NUM_WEIGHTS))]
    if layout is None:
        assert slots.keys is None and slots.bags.dtype == torch.int32
        return
    rows = [row for row in range(sum(NUM_WEIGHTS)) for _ in range(named[row])]
    assert slots.bags is None and (slots.keys >> 32).tolist() == rows
    sizes = {layout.bases[t] + b * layout.stride: len(bag)
             for t, bags in enumerate(TABLES) for b, bag in enumerate(bags)}
    scales = torch.tensor([1.0 if mode == 0 else 1.0 / sizes[b] for b in slot_bags(slots)], dtype=torch.float32)
    if mode == 1:
        assert torch.equal(slots.scale, scales)
    split_rows, split_bags, split_scales = run_arrays(slots)
    assert split_rows.tolist() == rows and split_bags.tolist() == slot_bags(slots)
    assert split_rows.dtype == split_bags.dtype == torch.int32 and torch.equal(split_scales, scales)


def test_the_consecutive_layout_numbers_the_rows_of_the_stacked_grads():
    grads = [torch.zeros(n, 2) for n in (4, 2, 3)]
    assert consecutive_bags(grads) == BagLayout([0, 4, 6], 1)


def test_bad_layouts_are_refused():
    with pytest.raises(ValueError, match="2 bases for 3 tables"):
        sort(0, BagLayout([0, 1], 3))
    with pytest.raises(ValueError, match="past int32"):
        sort(0, BagLayout([0, 1, 2], MAX_SLOTS // 2))
