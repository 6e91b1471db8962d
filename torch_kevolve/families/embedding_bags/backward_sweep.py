"""Triton dense weight gradients of kevolve::embedding_bags_backward: up to 64 tables per launch, no copy of any
input.

Rows are stacked (table t's row r is row row_base[t] + r of one [sum of rows, dim] result whose row blocks are
the tables' gradients), so one counting sort serves every table:

    count_slots   every index of every bag adds one to its row's count (bags read as [BAGS, BLOCK_N] tiles)
    prefix sums   one past each row's last slot (prefix_sums: two Triton passes)
    place_slots   every index of every bag claims a slot of its row's range (atomic decrement), recording its
                  table-local bag there (stacked: its row and its bag's number in a BagLayout as one int64 key);
                  the decrements leave each row's first slot (both kernels run bag_slots; sort_slots runs the
                  three steps, and the runs and fill-runs algorithms sort with them too)
    sweep_rows    program (block, t, d) owns ROWS consecutive rows of table t over one BLOCK_D slice: every row
                  gathers the grad rows of its first UNROLL slots at once (a [ROWS, UNROLL, BLOCK_D] gather, so
                  the loads are in flight together, not one dependent step per slot), rows with more slots go on
                  UNROLL at a time; the summed tile is stored once, zeros for rows without slots.

Every gradient row is written once, in the grad dtype, without float atomics; the grads may be strided views
(no stacking copy). The tables stay separate tensors: the kernels generated for T tables (count_slots_kernel,
place_slots_kernel, sweep_rows_kernel) take T sets of pointers and sizes and select table t's with a chain of
`tl.where`, as forward_triton does. Slot order within a row is not fixed, so
the fp32 sums are reproducible to rounding only.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import torch
import triton
import triton.language as tl

from ..generated_source import import_generated
from ..prefix_sums import inclusive_prefix_sums
from ..triton_launch import launch

BAGS = 32  # bags per program of count_slots and place_slots
BLOCK_N = 32  # positions per bag per step of count_slots and place_slots
MAX_TABLES_PER_LAUNCH = 64  # beyond, one launch per 64 tables (the select chain and argument list stay short)
BAG_TABLE_ARGS = ("indices", "offsets", "num_indices", "num_bags", "row_base", "bag_base")
ROW_TABLE_ARGS = ("grad", "stride_gb", "stride_gd", "num_rows", "row_base")
MAX_SLOTS = 2**31 - 1  # slots and stacked rows are int32


@triton.jit
def bag_slots(indices_ptr, offsets_ptr, row_ptr, slot_keys_ptr, slot_bags_ptr, slot_scale_ptr, num_indices, num_bags,
              row_base, bag_base, bag_stride, PLACE: tl.constexpr, SLOT_KEYS: tl.constexpr, MODE: tl.constexpr,
              BAGS: tl.constexpr, BLOCK_N: tl.constexpr):
    """For every index of this program's BAGS bags (the last bag ends at num_indices), with row = row_base + index
    and its bag bag_base + bag_stride * the table-local bag: PLACE 0: row_ptr holds counts, row_ptr[row] += 1.
    PLACE 1: row_ptr holds one past each row's last free slot, the index claims slot --row_ptr[row] and writes
    there its bag to slot_bags, or (SLOT_KEYS) row << 32 | bag to slot_keys (int64: one scattered store, not two),
    and (MODE 1, mean) 1/bag size to slot_scale.
    (The bag loads stay inline: Inductor's analysis of user kernels would take values returned by a call for
    pointers the stores depend on.)"""
    bag = tl.program_id(0) * BAGS + tl.arange(0, BAGS)
    bag_mask = bag < num_bags
    start = tl.load(offsets_ptr + bag, mask=bag_mask, other=0).to(tl.int64)
    end = tl.load(offsets_ptr + bag + 1, mask=bag + 1 < num_bags, other=num_indices).to(tl.int64)
    size = tl.where(bag_mask, end - start, 0)
    for k in range(0, tl.max(size, axis=0), BLOCK_N):
        n = start[:, None] + k + tl.arange(0, BLOCK_N)[None, :]
        mask = n < (start + size)[:, None]
        row = row_base + tl.load(indices_ptr + n, mask=mask, other=0).to(tl.int64)
        if PLACE == 0:
            tl.atomic_add(row_ptr + row, 1, mask=mask, sem="relaxed")
        else:
            slot = tl.atomic_add(row_ptr + row, -1, mask=mask, sem="relaxed") - 1
            slot_bag = tl.broadcast_to(bag_base + bag[:, None].to(tl.int64) * bag_stride, [BAGS, BLOCK_N])
            if SLOT_KEYS:
                tl.store(slot_keys_ptr + slot, (row << 32) | slot_bag, mask=mask)
            else:
                tl.store(slot_bags_ptr + slot, slot_bag.to(tl.int32), mask=mask)
            if MODE == 1:
                scale = 1.0 / tl.maximum(size, 1).to(tl.float32)
                tl.store(slot_scale_ptr + slot, tl.broadcast_to(scale[:, None], [BAGS, BLOCK_N]), mask=mask)


@triton.jit
def row_slots_sum(grad_ptr, stride_gb, stride_gd, slot_bags_ptr, slot_scale_ptr, firsts, counts, k, d, d_mask,
                  MODE: tl.constexpr, UNROLL: tl.constexpr):
    """[ROWS, BLOCK_D] fp32: the sum over j < UNROLL of each row's slot k + j (its scaled grad row, or 0 past the
    row's count), the UNROLL gathers issued at once."""
    j = k + tl.arange(0, UNROLL)
    live = j[None, :] < counts[:, None]
    slot = firsts[:, None] + j[None, :]
    bag = tl.load(slot_bags_ptr + slot, mask=live, other=0).to(tl.int64)
    g = tl.load(grad_ptr + bag[:, :, None] * stride_gb + d[None, None, :] * stride_gd,
                mask=live[:, :, None] & d_mask[None, None, :], other=0.0).to(tl.float32)
    if MODE == 1:
        g = g * tl.load(slot_scale_ptr + slot, mask=live, other=0.0)[:, :, None]
    return tl.sum(g, axis=1)


@triton.jit
def sweep_rows(grad_ptr, stride_gb, stride_gd, counts_ptr, firsts_ptr, slot_bags_ptr, slot_scale_ptr, out_ptr,
               num_rows, row_base, dim, MODE: tl.constexpr, ROWS: tl.constexpr, UNROLL: tl.constexpr,
               BLOCK_D: tl.constexpr):
    """Write rows row_base + [block * ROWS, ...) of out over this program's BLOCK_D slice, each the fp32 sum of
    its slots' scaled grad rows (zeros for rows without slots), as one tile."""
    local = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_mask = local < num_rows
    rows = row_base + local.to(tl.int64)
    d = tl.program_id(2) * BLOCK_D + tl.arange(0, BLOCK_D)
    d_mask = d < dim
    counts = tl.load(counts_ptr + rows, mask=row_mask, other=0)
    firsts = tl.load(firsts_ptr + rows, mask=row_mask, other=0)
    acc = row_slots_sum(grad_ptr, stride_gb, stride_gd, slot_bags_ptr, slot_scale_ptr, firsts, counts, 0, d, d_mask,
                        MODE, UNROLL)
    for k in range(UNROLL, tl.max(counts, axis=0), UNROLL):
        acc += row_slots_sum(grad_ptr, stride_gb, stride_gd, slot_bags_ptr, slot_scale_ptr, firsts, counts, k, d,
                             d_mask, MODE, UNROLL)
    tl.store(out_ptr + rows[:, None] * dim + d[None, :], acc.to(out_ptr.dtype.element_ty),
             mask=row_mask[:, None] & d_mask[None, :])


_MODULE = '''"""Generated by {generator} for {tables} tables: do not edit."""
import triton
import triton.language as tl

from {generator} import bag_slots, sweep_rows


@triton.jit
def count_slots_kernel({bag_parameters} counts_ptr, BAGS: tl.constexpr, BLOCK_N: tl.constexpr):
    t = tl.program_id(1)
{bag_selects}
    bag_slots(indices, offsets, counts_ptr, counts_ptr, counts_ptr, counts_ptr, num_indices, num_bags, row_base,
              bag_base, 1, 0, 0, 0, BAGS, BLOCK_N)


@triton.jit
def place_slots_kernel({bag_parameters} ends_ptr, slot_keys_ptr, slot_bags_ptr, slot_scale_ptr, bag_stride,
                       SLOT_KEYS: tl.constexpr, MODE: tl.constexpr, BAGS: tl.constexpr, BLOCK_N: tl.constexpr):
    t = tl.program_id(1)
{bag_selects}
    bag_slots(indices, offsets, ends_ptr, slot_keys_ptr, slot_bags_ptr, slot_scale_ptr, num_indices, num_bags,
              row_base, bag_base, bag_stride, 1, SLOT_KEYS, MODE, BAGS, BLOCK_N)


@triton.jit
def sweep_rows_kernel({row_parameters} counts_ptr, firsts_ptr, slot_bags_ptr, slot_scale_ptr, out_ptr, dim,
                      MODE: tl.constexpr, ROWS: tl.constexpr, UNROLL: tl.constexpr, BLOCK_D: tl.constexpr):
    t = tl.program_id(1)
{row_selects}
    sweep_rows(grad, stride_gb, stride_gd, counts_ptr, firsts_ptr, slot_bags_ptr, slot_scale_ptr, out_ptr, num_rows,
               row_base, dim, MODE, ROWS, UNROLL, BLOCK_D)
'''


def _parameters(names: Sequence[str], tables: int) -> str:
    return " ".join(f"{name}{t}," for t in range(tables) for name in names)


def _selects(names: Sequence[str], tables: int) -> str:
    """Table 0's arguments, then table t's where program_id(1) == t."""
    first = ["    " + "; ".join(f"{name} = {name}0" for name in names)]
    return "\n".join(first + [f"    {name} = tl.where(t == {t}, {name}{t}, {name})"
                              for t in range(1, tables) for name in names])


def module_source(tables: int) -> str:
    """The text of the kernel module for `tables` tables."""
    return _MODULE.format(generator=__name__, tables=tables,
                          bag_parameters=_parameters(BAG_TABLE_ARGS, tables), bag_selects=_selects(BAG_TABLE_ARGS, tables),
                          row_parameters=_parameters(ROW_TABLE_ARGS, tables), row_selects=_selects(ROW_TABLE_ARGS, tables))


@functools.cache
def kernels(tables: int):
    """The generated module of the three kernels for `tables` tables."""
    return import_generated(f"{__package__}.generated_backward_sweep_{tables}", module_source(tables), "embedding_bags")


def _chunks(count: int) -> list[range]:
    return [range(start, min(start + MAX_TABLES_PER_LAUNCH, count)) for start in range(0, count, MAX_TABLES_PER_LAUNCH)]


@dataclass(frozen=True)
class BagLayout:
    """How a stacked sort numbers the bags: table t's bag b is bases[t] + b * stride (numbers below 2**31)."""

    bases: list
    stride: int = 1


def consecutive_bags(grads: Sequence[torch.Tensor]) -> BagLayout:
    """Every table's bags numbered after the tables' before it (the rows of torch.cat(grads))."""
    return BagLayout([sum(g.shape[0] for g in grads[:t]) for t in range(len(grads))])


@dataclass(frozen=True)
class SortedSlots:
    """The indices of every table sorted by stacked row (table t's row r is row row_bases[t] + r): row r's slots
    are [firsts[r], firsts[r] + counts[r]). Per slot: its table-local bag (int32; None when stacked) or, stacked,
    its key (int64: row << 32 | its bag's number in the sort's BagLayout; None when not), and in mean mode (mode 1)
    its fp32 scale, 1 / its bag's size (for sums scale is a placeholder of one element)."""

    counts: torch.Tensor
    firsts: torch.Tensor
    bags: torch.Tensor | None
    keys: torch.Tensor | None
    scale: torch.Tensor
    mode: int
    row_bases: list


def run_arrays(slots: SortedSlots) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per slot of a stacked sort, as backward_triton's reduce_runs_kernel reads them: its row and bag number
    (int32, the keys split by one pointwise pass) and its fp32 scale (ones for sums)."""
    keys = slots.keys
    scale = slots.scale if slots.mode == 1 else torch.ones(keys.shape[0], dtype=torch.float32, device=keys.device)
    return (keys >> 32).to(torch.int32), (keys & 0xFFFFFFFF).to(torch.int32), scale


def sort_slots(grads: Sequence[torch.Tensor], indices: Sequence[torch.Tensor], offsets: Sequence[torch.Tensor],
               num_weights: Sequence[int], mode: int, stacked: BagLayout | None = None) -> SortedSlots:
    """Count, prefix sums and place (the arguments as embedding_bags_backward_sweep takes them; only the grads' bag
    counts, dtype and device are read); `stacked`: the bags numbered by that layout, and every slot's row and scale
    kept (None: table-local bags)."""
    if not (len(grads) == len(indices) == len(offsets) == len(num_weights)) or not grads:
        raise ValueError("one grad, indices, offsets and num_weights per table, at least one table")
    if stacked is not None and len(stacked.bases) != len(grads):
        raise ValueError(f"a bag layout of {len(stacked.bases)} bases for {len(grads)} tables")
    total_rows, total_slots = sum(num_weights), sum(i.numel() for i in indices)
    if total_rows > MAX_SLOTS or total_slots > MAX_SLOTS:  # apart: comparing the two would pin the slots' count
        raise ValueError(f"{total_rows} rows and {total_slots} indices: the sort indexes both with int32")
    device = grads[0].device
    row_bases = [sum(num_weights[:t]) for t in range(len(grads))]
    bag_counts = [g.shape[0] for g in grads]
    bag_bases = [0] * len(grads) if stacked is None else stacked.bases
    if stacked is not None and any(b + (n - 1) * stacked.stride > MAX_SLOTS for b, n in zip(bag_bases, bag_counts)):
        raise ValueError("the bag layout numbers bags past int32")
    per_table_bags = [(indices[t], offsets[t], indices[t].numel(), bag_counts[t], row_bases[t], bag_bases[t])
                      for t in range(len(grads))]

    def over_bags(kernel_name: str, *buffers, **constexprs) -> None:
        """Launch the generated bag kernel `kernel_name` over every table's bags, a chunk of tables at a time."""
        for chunk in _chunks(len(grads)):
            grid = (triton.cdiv(max(bag_counts[t] for t in chunk), BAGS), len(chunk))
            launch(getattr(kernels(len(chunk)), kernel_name), grid, *(a for t in chunk for a in per_table_bags[t]),
                   *buffers, BAGS=BAGS, BLOCK_N=BLOCK_N, num_warps=4, num_stages=1, **constexprs)

    counts = torch.zeros(total_rows, dtype=torch.int32, device=device)
    over_bags("count_slots_kernel", counts)
    firsts = inclusive_prefix_sums(counts)  # row ends, until place_slots claims the slots
    scale = torch.empty(total_slots if mode == 1 else 1, dtype=torch.float32, device=device)
    slots = torch.empty(total_slots, dtype=torch.int32 if stacked is None else torch.int64, device=device)
    over_bags("place_slots_kernel", firsts, slots, slots, scale, 1 if stacked is None else stacked.stride,
              SLOT_KEYS=stacked is not None, MODE=mode)
    if stacked is None:
        return SortedSlots(counts, firsts, slots, None, scale, mode, row_bases)
    return SortedSlots(counts, firsts, None, slots, scale, mode, row_bases)


def embedding_bags_backward_sweep(grads: Sequence[torch.Tensor], indices: Sequence[torch.Tensor],
                                  offsets: Sequence[torch.Tensor], num_weights: Sequence[int], mode: int,
                                  genome: dict) -> list[torch.Tensor]:
    """grad of weight t = ATen's `_embedding_bag_backward` of table t, sum (mode 0) or mean (mode 1), no padding
    index or per-sample weights, as views of one [sum of num_weights, dim] tensor in the grads' dtype.

    grads[t]: [bags_t, dim] (any strides); indices[t]: [n_t] rows of table t; offsets[t]: [bags_t (+1)] first
    position of each bag (a trailing include_last_offset entry is ignored: the last bag ends at n_t);
    num_weights[t]: rows of table t. genome: ROWS, UNROLL, BLOCK_D, num_warps, num_stages.
    """
    slots = sort_slots(grads, indices, offsets, num_weights, mode)
    dim = grads[0].shape[1]
    out = torch.empty(sum(num_weights), dim, dtype=grads[0].dtype, device=grads[0].device)
    for chunk in _chunks(len(grads)):
        grid = (triton.cdiv(max(num_weights[t] for t in chunk), genome["ROWS"]), len(chunk),
                triton.cdiv(dim, genome["BLOCK_D"]))
        per_table_rows = (a for t in chunk for a in (grads[t], grads[t].stride(0), grads[t].stride(1), num_weights[t],
                                                     slots.row_bases[t]))
        launch(kernels(len(chunk)).sweep_rows_kernel, grid, *per_table_rows, slots.counts, slots.firsts, slots.bags,
               slots.scale, out, dim, MODE=mode, ROWS=genome["ROWS"], UNROLL=genome["UNROLL"], BLOCK_D=genome["BLOCK_D"],
               num_warps=genome["num_warps"], num_stages=genome["num_stages"])
    return list(out.split(list(num_weights)))
