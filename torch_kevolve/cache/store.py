"""UserStore: the user's kernel cache, one SQLite file shared safely by concurrent processes."""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Iterator

from ..key import OpKey
from .errors import CacheError
from .record import KernelRecord

FILENAME = "kernels.sqlite"
_SCHEMA_VERSION = 1
_BUSY_TIMEOUT_S = 30.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key_id TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    fitness REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    store_id TEXT NOT NULL,
    generation INTEGER NOT NULL
);
"""


def default_cache_dir() -> Path:
    """The user cache directory: $KEVOLVE_CACHE_DIR, else ~/.cache/torch_kevolve."""
    env = os.environ.get("KEVOLVE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "torch_kevolve"


class UserStore:
    """Best kernel per key in `directory`/kernels.sqlite; opened on first use, every failure a CacheError."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.path = self.directory / FILENAME
        self._ready = False

    def put(self, record: KernelRecord, replace: bool = False) -> bool:
        """Store `record` unless the stored one for its key is at least as fit (with `replace`: in any case, for
        a record measured again, whose fitness against today's reference is not comparable with the stored
        one's); return whether it was stored."""
        if not record.hash_ok():
            raise CacheError(f"refusing to store a record whose source does not match its sha256: {record.key.short()}")
        with self._transaction() as db:
            stored = db.execute(
                "INSERT INTO records (key_id, family, fitness, record) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key_id) DO UPDATE SET family = excluded.family, fitness = excluded.fitness, "
                "record = excluded.record WHERE excluded.fitness > records.fitness OR ?",
                (record.key.id, record.key.family, record.fitness, json.dumps(record.to_dict()), replace),
            ).rowcount
            if stored:
                db.execute("UPDATE meta SET generation = generation + 1")
        return bool(stored)

    def get(self, key: OpKey) -> KernelRecord | None:
        with self._connection() as db:
            row = db.execute("SELECT key_id, record FROM records WHERE key_id = ?", (key.id,)).fetchone()
        return None if row is None else self._record(*row)

    def discard(self, key: OpKey) -> bool:
        """Remove the record of `key`; return whether there was one."""
        with self._transaction() as db:
            removed = db.execute("DELETE FROM records WHERE key_id = ?", (key.id,)).rowcount
            if removed:
                db.execute("UPDATE meta SET generation = generation + 1")
        return bool(removed)

    def records(self) -> list[KernelRecord]:
        with self._connection() as db:
            rows = db.execute("SELECT key_id, record FROM records ORDER BY key_id").fetchall()
        return [self._record(*row) for row in rows]

    def keys(self) -> list[OpKey]:
        with self._connection() as db:
            rows = db.execute("SELECT key_id FROM records ORDER BY key_id").fetchall()
        return [OpKey.from_dict(json.loads(key_id)) for (key_id,) in rows]

    def purge(self, family: str | None = None) -> int:
        """Remove every record (of `family` when given); return how many were removed."""
        with self._transaction() as db:
            if family is None:
                removed = db.execute("DELETE FROM records").rowcount
            else:
                removed = db.execute("DELETE FROM records WHERE family = ?", (family,)).rowcount
            if removed:
                db.execute("UPDATE meta SET generation = generation + 1")
        return removed

    def fingerprint(self) -> str:
        """A short text that changes whenever the stored records change."""
        with self._connection() as db:
            store_id, generation = db.execute("SELECT store_id, generation FROM meta").fetchone()
        return f"{store_id[:8]}.{generation}"

    def delete(self) -> None:
        """Delete the database and its WAL/SHM files; works on a corrupt database too."""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def _record(self, key_id: str, text: str) -> KernelRecord:
        try:
            return KernelRecord.from_dict(json.loads(text))
        except (ValueError, CacheError) as e:
            raise CacheError(f"{self.path}: stored record for {key_id} is unreadable: {e}; {self._remedy()}") from None

    def _remedy(self) -> str:
        return f"run `kevolve cache purge --all` or delete {self.path}"

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction locked up front (BEGIN IMMEDIATE) so writers queue; an exception rolls it back."""
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection, (re)creating the schema if the file is new; errors leave as CacheError."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists()
            db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise self._error(e) from None
        try:
            db.execute("PRAGMA synchronous = NORMAL")
            if fresh or not self._ready:
                self._initialise(db)
            yield db
        except sqlite3.Error as e:
            raise self._error(e) from None
        finally:
            db.close()

    def _error(self, e: Exception) -> CacheError:
        text = str(e)
        if isinstance(e, OSError) or "unable to open" in text:
            return CacheError(f"cannot open the kernel cache {self.path} ({text}); "
                              "set KEVOLVE_CACHE_DIR to a writable directory")
        if "locked" in text or "busy" in text:
            return CacheError(f"{self.path} stayed locked by another process for {_BUSY_TIMEOUT_S:.0f} s ({text})")
        return CacheError(f"{self.path} is corrupt or not a kernel cache ({text}); {self._remedy()}")

    def _initialise(self, db: sqlite3.Connection) -> None:
        enable_wal(db)
        db.execute("BEGIN IMMEDIATE")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _SCHEMA_VERSION):
            raise CacheError(f"{self.path} has schema version {version}, this torch_kevolve reads "
                             f"{_SCHEMA_VERSION}; {self._remedy()}")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute("INSERT OR IGNORE INTO meta (one, store_id, generation) VALUES (1, ?, 0)", (uuid.uuid4().hex,))
        db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        db.execute("COMMIT")
        self._ready = True


def enable_wal(db: sqlite3.Connection) -> None:
    """Switch the database to WAL, retrying: a concurrent switch answers "locked" at once, without the busy timeout."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
        else:
            if mode == "wal":
                return
            if time.monotonic() > deadline:
                raise sqlite3.OperationalError(f"cannot switch to WAL journal mode (stays {mode!r})")
        time.sleep(0.01)
