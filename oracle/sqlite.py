"""The SQLite file under each service's durable state (oracle node, worker).

WAL journal, `synchronous=FULL` (a committed state change survives a power cut, which the
restart guarantees rely on), one short connection per call so HTTP reader threads and the
service's writer thread never share one, and `tx()` for an atomic multi-statement change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["SqliteFile"]


class SqliteFile:
    """A SQLite file with `schema` applied (idempotently: use CREATE ... IF NOT EXISTS)."""

    def __init__(self, path: str | Path, schema: str) -> None:
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self._conn() as c:
            c.executescript(schema)

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic state change: BEGIN IMMEDIATE … COMMIT (ROLLBACK on any exception)."""
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        with self._conn() as c:
            return c.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._conn() as c:
            return c.execute(sql, args).fetchall()

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        with self._conn() as c:
            c.execute(sql, args)
