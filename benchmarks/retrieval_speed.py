"""How fast the retrieval index answers on CPU (issue 5's target: under 5 ms to load, under 5 ms per query), for
the shipped index and for saved indexes of many embedding-bag keys.

    python -m benchmarks.retrieval_speed OUT.json [--sizes 1000,10000] [--repeats 20]

Per index: `KeyIndex.load` (metadata, sha256 check, FAISS read), a query (`nearest`, k=5, of a key not in the
index, family-filtered) with the vectorizer warm, and the first query of a fresh vectorizer (which also reads
the shipped operator-embedding table). Medians over `repeats`; the first load of each size is reported apart
(file-system cache cold for that file).
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from torch_kevolve.coverage.report import environment
from torch_kevolve.key import OpKey
from torch_kevolve.neighbours import SHIPPED_INDEX_DIR
from torch_kevolve.retrieval import KeyIndex, KeyVectorizer

DEVICE = ("NVIDIA H100 80GB HBM3", "sm_90")


def bag_key(rows: int, dim: int, indices: int, bags: int, dtype: str = "float32", mode: int = 0) -> OpKey:
    """The key of an `_embedding_bag` forward (int64 indices, no per-sample weights or padding) on DEVICE."""
    return OpKey(family="embedding_bag", op="aten._embedding_bag.default",
                 params=(("mode", mode), ("per_sample_weights", False), ("include_last_offset", False),
                         ("padding_idx", -1)),
                 dtypes=(("weight", dtype), ("index", "int64")),
                 shape=(("num_weights", rows), ("dim", dim), ("num_indices", indices), ("num_bags", bags)),
                 strides="contiguous", device=DEVICE[0], capability=DEVICE[1])


def bag_keys(count: int) -> list[OpKey]:
    """`count` distinct embedding-bag forward keys over a grid of table sizes, widths, bag counts, dtypes, modes."""
    grid = itertools.product(range(10, 27), (16, 32, 64, 128, 256, 512), range(10, 22), (1, 8, 32),
                             ("float32", "bfloat16", "float16"), (0, 1, 2))
    keys = [bag_key(1 << rows, dim, 1 << indices, (1 << indices) // bag, dtype, mode)
            for rows, dim, indices, bag, dtype, mode in itertools.islice(grid, count)]
    if len(keys) < count:
        raise ValueError(f"the key grid holds {len(keys)} keys, fewer than {count}")
    return keys


def query_key() -> OpKey:
    """A key outside every index built here (a row count off the grid's powers of two)."""
    return bag_key(100_000, 128, 81_920, 4096)


def ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def measure(directory: Path, repeats: int) -> dict:
    """Load and query times of the index saved in `directory`, in milliseconds."""
    vectorizer = KeyVectorizer()
    first_load = ms(lambda: KeyIndex.load(directory, vectorizer))
    loads = [ms(lambda: KeyIndex.load(directory, vectorizer)) for _ in range(repeats)]
    index = KeyIndex.load(directory, vectorizer)
    key = query_key()
    index.nearest(key, k=5, family="embedding_bag")
    queries = [ms(lambda: index.nearest(key, k=5, family="embedding_bag")) for _ in range(repeats)]
    cold = []
    for _ in range(repeats):
        fresh = KeyIndex.load(directory, KeyVectorizer())
        cold.append(ms(lambda: fresh.nearest(key, k=5, family="embedding_bag")))
    return {"keys": len(index), "first_load_ms": first_load, "load_ms": statistics.median(loads),
            "query_ms": statistics.median(queries), "first_query_fresh_vectorizer_ms": statistics.median(cold)}


def run(sizes: list[int], repeats: int) -> list[dict]:
    rows = [{"index": "shipped", **measure(SHIPPED_INDEX_DIR, repeats)}]
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            index = KeyIndex(KeyVectorizer())
            index.add(bag_keys(size))
            index.save(folder)
            rows.append({"index": f"{size} keys", **measure(Path(folder), repeats)})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--sizes", default="1000,10000", help="key counts of the saved indexes to time")
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    rows = run([int(s) for s in args.sizes.split(",") if s], args.repeats)
    for row in rows:
        print(f"{row['index']:>12}: {row['keys']:6} keys, load {row['load_ms']:6.2f} ms (first {row['first_load_ms']:6.2f}),"
              f" query {row['query_ms']:6.2f} ms, first query of a fresh vectorizer "
              f"{row['first_query_fresh_vectorizer_ms']:6.2f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": environment("cpu"), "repeats": args.repeats, "rows": rows,
                                    "command": "python -m benchmarks.retrieval_speed " + " ".join(argv or sys.argv[1:])},
                                   indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
