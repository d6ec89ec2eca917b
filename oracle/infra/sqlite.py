"""The SQLite file under each service's durable state (oracle node, worker).

WAL journal, `synchronous=FULL` (a committed state change survives a power cut, which the
restart guarantees rely on), and `tx()` for an atomic multi-statement change. Connections are
pooled: a call borrows an idle connection (or opens one) and returns it afterwards, so the
service's writer thread and HTTP reader threads never share one at the same time, and opening
a connection (and its pragmas) is paid once per concurrent user rather than once per query.
A connection handed back inside an unfinished transaction (an exception between ``BEGIN`` and
``COMMIT``) is rolled back first.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["SqliteFile"]


class SqliteFile:
    """A SQLite file with `schema` applied (idempotently: use CREATE ... IF NOT EXISTS).

    ``version`` is kept in SQLite's ``user_version``: a new file gets it, and a file written
    under another version (a changed table key) is refused with ValueError rather than
    misread."""

    def __init__(self, path: str | Path, schema: str, version: int = 0) -> None:
        self.path = str(path)
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self._conn() as c:
            found = int(c.execute("PRAGMA user_version").fetchone()[0])
            tables = c.execute("SELECT COUNT(*) FROM sqlite_master WHERE type='table'").fetchone()
            if tables[0] and found != version:
                raise ValueError(
                    f"{self.path}: state written by another pouw version (schema {found}, this "
                    f"one reads {version}); keep it for that version and start with a new file"
                )
            c.executescript(schema)
            c.execute(f"PRAGMA user_version={int(version)}")

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open()
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            with self._lock:
                self._idle.append(conn)

    def close(self) -> None:
        """Close the idle connections (those in use are closed by their users' return)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
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

    def add_columns(self, table: str, columns: dict[str, str]) -> list[str]:
        """Add the columns (name → SQL declaration) ``table`` lacks: the migration of a file
        written by an older version (``CREATE TABLE IF NOT EXISTS`` keeps its old columns).
        Returns the names added. Names come from the code, never from input."""
        with self.tx() as c:
            have = {row[1] for row in c.execute(f"PRAGMA table_info({table})")}
            added = [name for name in columns if name not in have]
            for name in added:
                c.execute(f"ALTER TABLE {table} ADD COLUMN {name} {columns[name]}")
        return added

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        with self._conn() as c:
            return c.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._conn() as c:
            return c.execute(sql, args).fetchall()

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        with self._conn() as c:
            c.execute(sql, args)
