"""SearchGraph: the persisted graph of an evolutionary search, one SQLite file for many searches.

Nodes are evaluated kernel variants of one search (a cache key); edges record which parent(s) and which
transformation made each child. Every insert commits, so a killed search resumes where it stopped.
Lineage and best-so-far are SQL queries (a recursive CTE), not in-memory copies.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..cache.store import enable_wal
from ..families.base import Genome
from .evaluation import EvaluationResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    search TEXT NOT NULL,
    implementation TEXT NOT NULL,
    abstraction TEXT NOT NULL,
    genome TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    island INTEGER NOT NULL,
    status TEXT NOT NULL,
    fitness REAL NOT NULL,
    result TEXT NOT NULL,
    created REAL NOT NULL,
    UNIQUE (search, implementation, genome)
);
CREATE TABLE IF NOT EXISTS edges (
    parent INTEGER NOT NULL REFERENCES nodes(id),
    child INTEGER NOT NULL REFERENCES nodes(id),
    transformation TEXT NOT NULL,
    PRIMARY KEY (parent, child)
);
CREATE INDEX IF NOT EXISTS nodes_by_search ON nodes (search, fitness);
CREATE INDEX IF NOT EXISTS edges_by_child ON edges (child);
"""


@dataclass(frozen=True)
class Node:
    """One evaluated variant: its genome under `implementation`, its evaluation and where it sits."""

    id: int
    search: str
    implementation: str
    abstraction: str
    genome: Genome
    source_sha256: str
    island: int
    status: str
    fitness: float
    result: EvaluationResult
    created: float


class SearchGraph:
    """Nodes and edges of every search stored in `path` (SQLite, WAL, 60 s busy timeout: safe with concurrent
    writers, processes or threads, each with its own SearchGraph)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        enable_wal(self._db)
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, search: str, implementation: str, abstraction: str, genome: Genome, source_sha256: str,
            result: EvaluationResult, island: int = 0, parents: tuple[tuple[int, str], ...] = ()) -> Node:
        """Insert an evaluated node and its edges ((parent id, transformation), ...) in one transaction."""
        genome_text = _genome_text(genome)
        created = time.time()
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO nodes (search, implementation, abstraction, genome, source_sha256, island, status, "
                "fitness, result, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (search, implementation, abstraction, genome_text, source_sha256, island, result.status.value,
                 result.fitness, json.dumps(result.to_dict(), sort_keys=True), created))
            node_id = cursor.lastrowid
            self._db.executemany("INSERT INTO edges (parent, child, transformation) VALUES (?, ?, ?)",
                                 [(parent, node_id, transformation) for parent, transformation in parents])
        return self.node(node_id)

    def node(self, node_id: int) -> Node:
        row = self._db.execute(f"SELECT {_columns()} FROM nodes WHERE id = ?", (node_id,)).fetchone()
        if row is None:
            raise KeyError(f"no node {node_id} in {self.path}")
        return _node(row)

    def nodes(self, search: str) -> list[Node]:
        """Every node of `search`, in insertion order."""
        return [_node(r) for r in self._db.execute(f"SELECT {_columns()} FROM nodes WHERE search = ? ORDER BY id",
                                                   (search,))]

    def find(self, search: str, implementation: str, genome: Genome) -> Node | None:
        """The node of `search` that already evaluated this genome, if any."""
        row = self._db.execute(f"SELECT {_columns()} FROM nodes WHERE search = ? AND implementation = ? AND genome = ?",
                               (search, implementation, _genome_text(genome))).fetchone()
        return _node(row) if row else None

    def best(self, search: str) -> Node | None:
        """The fittest node of `search` (earliest on ties), or None before any node."""
        row = self._db.execute(f"SELECT {_columns()} FROM nodes WHERE search = ? ORDER BY fitness DESC, id LIMIT 1",
                               (search,)).fetchone()
        return _node(row) if row else None

    def lineage(self, node_id: int) -> list[tuple[Node, str]]:
        """The ancestors of a node, nearest first, each with the transformation that led from it (recursive CTE)."""
        rows = self._db.execute(
            "WITH RECURSIVE ancestors(id, transformation, depth) AS ("
            "  SELECT parent, transformation, 1 FROM edges WHERE child = ?"
            "  UNION"
            "  SELECT e.parent, e.transformation, a.depth + 1 FROM edges e JOIN ancestors a ON e.child = a.id"
            f") SELECT {_columns('n')}, a.transformation FROM ancestors a JOIN nodes n ON n.id = a.id "
            "ORDER BY a.depth, n.id", (node_id,)).fetchall()
        seen, out = set(), []
        for row in rows:
            if row[0] not in seen:
                seen.add(row[0])
                out.append((_node(row[:-1]), row[-1]))
        return out

    def children(self, search: str) -> dict[int, list[int]]:
        """parent id -> child ids, for the nodes of `search`."""
        out: dict[int, list[int]] = {}
        for parent, child in self._db.execute(
                "SELECT e.parent, e.child FROM edges e JOIN nodes n ON n.id = e.child WHERE n.search = ? "
                "ORDER BY e.child", (search,)):
            out.setdefault(parent, []).append(child)
        return out

    def searches(self) -> list[str]:
        """Every search id in the graph, by first evaluation."""
        return [s for (s,) in self._db.execute("SELECT search FROM nodes GROUP BY search ORDER BY MIN(id)")]

    def trajectory(self, search: str) -> list[tuple[int, float, float]]:
        """(evaluation number, fitness, best fitness so far) for every node of `search`, in order."""
        best, out = 0.0, []
        for i, (fitness,) in enumerate(self._db.execute("SELECT fitness FROM nodes WHERE search = ? ORDER BY id",
                                                        (search,)), start=1):
            best = max(best, fitness)
            out.append((i, fitness, best))
        return out

    @contextlib.contextmanager
    def _transaction(self):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


NODE_COLUMNS = ("id", "search", "implementation", "abstraction", "genome", "source_sha256", "island", "status",
                "fitness", "result", "created")


def _columns(alias: str = "") -> str:
    return ", ".join(f"{alias}.{c}" if alias else c for c in NODE_COLUMNS)


def _genome_text(genome: Genome) -> str:
    return json.dumps(genome, sort_keys=True, separators=(",", ":"))


def _node(row) -> Node:
    (node_id, search, implementation, abstraction, genome, sha, island, status, fitness, result, created) = row
    return Node(node_id, search, implementation, abstraction, json.loads(genome), sha, island, status, fitness,
                EvaluationResult.from_dict(json.loads(result)), created)
