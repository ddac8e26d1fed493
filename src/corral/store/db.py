"""Open the SQLite database, apply migrations, and run transactions.

The database lives at ``<data-dir>/corral.db`` in WAL mode. ``transaction()`` commits on
success and rolls back on error, so a record is either fully written or not at all.

Durability (``synchronous``): ``FULL`` by default, so a commit is on the disk before it
returns; a function, a version or a queued event that was acknowledged survives a crash of
Corral *and* of the machine (power loss, kernel panic). A commit then costs an fsync (about
0.35 ms on the benchmark machine, against 0.02 ms with ``NORMAL``): control-plane writes
are rare, and the async-event queue writes from a worker thread (``EventTable``), so the
event loop does not wait for the disk. ``NORMAL`` (``CORRAL_DB_SYNC=normal``) keeps only
what a crash of Corral cannot lose: after an OS crash or power loss the last transactions
may be gone. One lock serialises the connection between the loop and those threads.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Database"]

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE functions (
        name TEXT PRIMARY KEY,
        created_s REAL NOT NULL,
        reserved_concurrency INTEGER,
        last_version_number INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE versions (
        function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        version TEXT NOT NULL,
        seq INTEGER NOT NULL,
        spec TEXT NOT NULL,
        state TEXT NOT NULL,
        state_reason TEXT NOT NULL DEFAULT '',
        state_reason_code TEXT NOT NULL DEFAULT '',
        last_update_status TEXT NOT NULL,
        last_update_status_reason TEXT NOT NULL DEFAULT '',
        last_update_status_reason_code TEXT NOT NULL DEFAULT '',
        last_modified_s REAL NOT NULL,
        revision_id TEXT NOT NULL,
        PRIMARY KEY (function_name, version)
    );
    CREATE TABLE aliases (
        function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        name TEXT NOT NULL,
        function_version TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        routing TEXT NOT NULL DEFAULT '{}',
        revision_id TEXT NOT NULL,
        PRIMARY KEY (function_name, name)
    );
    CREATE TABLE capacity_providers (
        name TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        config TEXT NOT NULL,
        last_modified_s REAL NOT NULL
    );
    CREATE TABLE tags (
        resource_arn TEXT PRIMARY KEY,
        tags TEXT NOT NULL
    );
    CREATE TABLE scaling_configs (
        function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        qualifier TEXT NOT NULL,
        min_environments INTEGER,
        max_environments INTEGER,
        PRIMARY KEY (function_name, qualifier)
    );
    CREATE TABLE async_events (
        id TEXT PRIMARY KEY,
        function_name TEXT NOT NULL,
        qualifier TEXT NOT NULL,
        payload BLOB NOT NULL,
        client_context TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before_s REAL NOT NULL,
        created_s REAL NOT NULL
    );
    CREATE INDEX async_events_due ON async_events (not_before_s);
    """,
    """
    CREATE TABLE api_keys (
        access_key_id TEXT PRIMARY KEY,
        secret TEXT NOT NULL,
        role TEXT NOT NULL,
        function_patterns TEXT NOT NULL DEFAULT '[]',
        name TEXT NOT NULL,
        created_s REAL NOT NULL
    );
    """,
    # What $LATEST was when the last numbered version was published (a digest of its
    # configuration and code): PublishVersion publishes only when it changed.
    """
    ALTER TABLE functions ADD COLUMN published_spec TEXT NOT NULL DEFAULT '';
    """,
    # Attempts that met a throttle or a system error: retried with a growing backoff, not
    # counted against the retries of function errors (``attempts``).
    """
    ALTER TABLE async_events ADD COLUMN throttles INTEGER NOT NULL DEFAULT 0;
    """,
    # Per-qualifier configuration of a function kept as JSON (``kind``: ``event-invoke`` for
    # PutFunctionEventInvokeConfig, ``url`` for CreateFunctionUrlConfig); async events that
    # carry a destination record (``kind`` ``destination``); events and records given up,
    # kept for ``corral events failed``.
    """
    CREATE TABLE qualifier_configs (
        kind TEXT NOT NULL,
        function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        qualifier TEXT NOT NULL,
        config TEXT NOT NULL,
        PRIMARY KEY (kind, function_name, qualifier)
    );
    ALTER TABLE async_events ADD COLUMN kind TEXT NOT NULL DEFAULT 'event';
    CREATE TABLE failed_events (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        function_name TEXT NOT NULL,
        qualifier TEXT NOT NULL,
        payload BLOB NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        created_s REAL NOT NULL,
        failed_s REAL NOT NULL
    );
    """,
    # Stacks deployed by `corral deploy`: what each resource became, as JSON.
    """
    CREATE TABLE stacks (
        name TEXT PRIMARY KEY,
        record TEXT NOT NULL,
        updated_s REAL NOT NULL
    );
    """,
)


class Database:
    """One SQLite connection with Corral's schema applied."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # It holds the API keys' secrets: readable by its owner only (SQLite gives the
        # -wal and -shm files the same mode).
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        if synchronous.upper() not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def _migrate(self) -> None:
        current = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        for index, script in enumerate(_MIGRATIONS[current:], start=current + 1):
            with self.transaction() as conn:
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={index}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the body in one transaction: commit on success, roll back on error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        """Run a read-only statement and return every row."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
