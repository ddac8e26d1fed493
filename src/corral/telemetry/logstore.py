"""Durable, bounded function and system logs: ``<data-dir>/logs.db`` (SQLite, WAL).

The invoke path only appends a ``LogRecord`` to a list (``emit``). A writer thread renders
and inserts what accumulated every quarter second, in one transaction, so the event loop
never waits for the disk. A query first writes what is pending, so it sees every record
emitted before it (``corral logs`` right after an invoke shows that invoke).

Bounded twice (settings): records older than ``max_age_s`` go, and when the live data
passes ``max_bytes`` the oldest tenth goes, until it fits. Both run at start and every
minute.

Indexes serve the queries people make: a log group by time, a request id, a stream.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from corral.telemetry.logs import LogRecord

__all__ = ["DiscardedLogs", "LogQuery", "LogStore", "Retention", "StoredEvent"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    log_group TEXT NOT NULL,
    log_stream TEXT NOT NULL,
    version TEXT NOT NULL,
    request_id TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_group_time ON logs (log_group, ts_ms);
CREATE INDEX IF NOT EXISTS logs_request ON logs (request_id) WHERE request_id != '';
CREATE INDEX IF NOT EXISTS logs_stream ON logs (log_stream, id);
"""
_FLUSH_INTERVAL_S = 0.25
_RETENTION_INTERVAL_S = 60.0


@dataclass(frozen=True)
class Retention:
    """How much history is kept."""

    max_age_s: float = 7 * 24 * 3600.0
    max_bytes: int = 1024**3


@dataclass(frozen=True)
class LogQuery:
    """Which records to read: one log group, narrowed by any of the rest."""

    log_group: str
    version: str | None = None
    stream: str | None = None
    request_id: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    # Only records after this id (a cursor: the last id of the previous page).
    after_id: int = 0
    limit: int = 1000


@dataclass(frozen=True)
class StoredEvent:
    """One stored record."""

    id: int
    timestamp_ms: int
    log_group: str
    log_stream: str
    request_id: str
    message: str


def _version_of(stream: str) -> str:
    """``2026/01/02/[3]abc`` -> ``3``; other streams (system logs) have none."""
    start = stream.find("[")
    end = stream.find("]", start + 1)
    return stream[start + 1 : end] if start >= 0 and end > start else ""


class LogStore:
    """The log sink of a running server, and what ``corral logs`` reads."""

    def __init__(self, path: Path, retention: Retention = Retention()) -> None:
        self._path = path
        self._retention = retention
        self._pending: list[LogRecord] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    # --- the sink ---------------------------------------------------------------------------
    def emit(self, record: LogRecord) -> None:
        self._pending.append(record)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Apply retention once, then write in the background."""
        self.enforce_retention()
        self._thread = threading.Thread(target=self._run, name="corral-logs", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Write what is pending and close the database."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()
        with self._lock:
            self._db.close()

    def _run(self) -> None:
        next_retention = time.monotonic() + _RETENTION_INTERVAL_S
        while not self._stop.is_set():
            self._wake.wait(_FLUSH_INTERVAL_S)
            self._wake.clear()
            with contextlib.suppress(sqlite3.Error):
                self.flush()
                if time.monotonic() >= next_retention:
                    next_retention = time.monotonic() + _RETENTION_INTERVAL_S
                    self.enforce_retention()

    # --- writing -----------------------------------------------------------------------------
    def flush(self) -> int:
        """Insert every pending record now; returns how many."""
        with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return 0
            rows = [
                (
                    int(r.timestamp_s * 1000),
                    r.log_group,
                    r.log_stream,
                    _version_of(r.log_stream),
                    r.request_id,
                    r.message,
                )
                for r in batch
            ]
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO logs (ts_ms, log_group, log_stream, version, request_id, "
                    "message) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
            return len(rows)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def enforce_retention(self, now_s: float | None = None) -> int:
        """Delete records past the age limit, then the oldest until the size fits."""
        cutoff = int(((time.time() if now_s is None else now_s) - self._retention.max_age_s) * 1000)
        with self._lock:
            deleted = self._db.execute("DELETE FROM logs WHERE ts_ms < ?", (cutoff,)).rowcount
            while self._live_bytes() > self._retention.max_bytes:
                count = self._db.execute("SELECT count(*) FROM logs").fetchone()[0]
                if count == 0:
                    break
                cut = self._db.execute(
                    "DELETE FROM logs WHERE id <= (SELECT id FROM logs ORDER BY id "
                    "LIMIT 1 OFFSET ?)",
                    (max(1, count // 10) - 1,),
                )
                deleted += cut.rowcount
            return deleted

    def _live_bytes(self) -> int:
        page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * page_size)

    # --- reading -----------------------------------------------------------------------------
    def query(self, query: LogQuery) -> list[StoredEvent]:
        """Matching records, oldest first, at most ``query.limit``."""
        self.flush()
        sql, params = _select(query)
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [StoredEvent(*row) for row in rows]

    def explain(self, query: LogQuery) -> str:
        """SQLite's plan for ``query`` (which index it uses)."""
        sql, params = _select(query)
        with self._lock:
            rows = self._db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        return "\n".join(str(row[-1]) for row in rows)

    def count(self) -> int:
        self.flush()
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM logs").fetchone()[0])


def _select(query: LogQuery) -> tuple[str, list[object]]:
    clauses = ["log_group = ?"]
    params: list[object] = [query.log_group]
    if query.request_id:
        # The second clause lets SQLite use the partial index on request ids.
        clauses.append("request_id = ? AND request_id != ''")
        params.append(query.request_id)
    if query.stream:
        clauses.append("log_stream = ?")
        params.append(query.stream)
    if query.version:
        clauses.append("version = ?")
        params.append(query.version)
    if query.since_ms is not None:
        clauses.append("ts_ms >= ?")
        params.append(query.since_ms)
    if query.until_ms is not None:
        clauses.append("ts_ms <= ?")
        params.append(query.until_ms)
    if query.after_id:
        clauses.append("id > ?")
        params.append(query.after_id)
    sql = (
        "SELECT id, ts_ms, log_group, log_stream, request_id, message FROM logs WHERE "
        + " AND ".join(clauses)
        + " ORDER BY id LIMIT ?"
    )
    params.append(max(1, query.limit))
    return sql, params


class DiscardedLogs(LogStore):
    """``CORRAL_LOG_STORE=off``: records are dropped (LogType=Tail still has them)."""

    def __init__(self) -> None:
        super().__init__(Path(":memory:"))

    def emit(self, record: LogRecord) -> None:
        pass
