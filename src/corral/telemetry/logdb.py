"""The log database: ``<data-dir>/logs.db`` (SQLite, WAL), its schema, writes and queries.

One process writes it (``telemetry.logwriter``); the server reads it through its own
connection, which WAL lets run beside the writer.

Bounded twice (``Retention``): records older than ``max_age_s`` go, and when the live data
passes ``max_bytes`` the oldest tenth goes, until it fits.

Two indexes serve the queries people make: a log group by time (a stream or a version is
narrowed from there) and a request id. Request ids are time-ordered (UUID version 7), so
both indexes grow at their end; a third index, by stream, cost 12% of the insert time and
is not worth it.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LogDatabase", "LogQuery", "Retention", "Row", "StoredEvent", "version_of"]

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
DROP INDEX IF EXISTS logs_stream;
"""
# ts_ms, log_group, log_stream, version, request_id, message
Row = tuple[int, str, str, str, str, str]
# Rows per INSERT: one statement binds many rows, which costs far less than a statement
# per row (``executemany``).
_ROWS_PER_STATEMENT = 500


@functools.lru_cache(maxsize=8)
def _insert(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)
    return (
        "INSERT INTO logs (ts_ms, log_group, log_stream, version, request_id, message) "
        f"VALUES {values}"
    )


@dataclass(frozen=True)
class Retention:
    """How much history is kept."""

    max_age_s: float = 7 * 24 * 3600.0
    max_bytes: int = 1024**3


@dataclass(frozen=True)
class LogQuery:
    """Which records to read: one log group (or, by request id, any), narrowed by the rest."""

    log_group: str | None
    version: str | None = None
    stream: str | None = None
    request_id: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    # Only records after this id (a cursor: the last id of the previous page).
    after_id: int = 0
    limit: int = 1000
    # Only messages with this text in them (case-sensitive).
    contains: str | None = None


@dataclass(frozen=True)
class StoredEvent:
    """One stored record."""

    id: int
    timestamp_ms: int
    log_group: str
    log_stream: str
    request_id: str
    message: str


def version_of(stream: str) -> str:
    """``2026/01/02/[3]abc`` -> ``3``; other streams (system logs) have none."""
    start = stream.find("[")
    end = stream.find("]", start + 1)
    return stream[start + 1 : end] if start >= 0 and end > start else ""


class LogDatabase:
    """One connection to the log database (thread-safe: one statement at a time)."""

    def __init__(self, path: Path, retention: Retention = Retention()) -> None:
        self.retention = retention
        self._lock = threading.Lock()
        # Functions print what they like, secrets included: readable by its owner only.
        if path.parent.is_dir():
            path.touch(mode=0o600, exist_ok=True)
            path.chmod(0o600)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing -----------------------------------------------------------------------------
    def insert(self, rows: Sequence[Row]) -> None:
        """Store ``rows`` in one transaction."""
        if not rows:
            return
        with self._lock, self._transaction():
            for start in range(0, len(rows), _ROWS_PER_STATEMENT):
                chunk = rows[start : start + _ROWS_PER_STATEMENT]
                self._db.execute(_insert(len(chunk)), list(itertools.chain.from_iterable(chunk)))

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
        cutoff = int(((time.time() if now_s is None else now_s) - self.retention.max_age_s) * 1000)
        with self._lock:
            # Records arrive in time order: the old ones are the first ids, found without a
            # scan of the whole table.
            first_kept = self._db.execute(
                "SELECT id FROM logs WHERE ts_ms >= ? ORDER BY id LIMIT 1", (cutoff,)
            ).fetchone()
            if first_kept is None:
                deleted = self._db.execute("DELETE FROM logs").rowcount
            else:
                deleted = self._db.execute(
                    "DELETE FROM logs WHERE id < ? AND ts_ms < ?", (first_kept[0], cutoff)
                ).rowcount
            while self.live_bytes() > self.retention.max_bytes:
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

    def live_bytes(self) -> int:
        """Bytes of the pages in use (free pages are reused before the file grows)."""
        page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * page_size)

    # --- reading -----------------------------------------------------------------------------
    def query(self, query: LogQuery) -> list[StoredEvent]:
        """Matching records, oldest first, at most ``query.limit``."""
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

    def reports(self, log_group: str, since_ms: int, until_ms: int) -> list[tuple[int, str]]:
        """``(timestamp_ms, message)`` of the report records (``REPORT`` lines and
        ``platform.report`` records) of one group in a time range, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT ts_ms, message FROM logs WHERE log_group = ? AND ts_ms BETWEEN ? AND ? "
                "AND (message LIKE 'REPORT RequestId:%' OR message LIKE '%\"platform.report\"%') "
                "ORDER BY ts_ms",
                (log_group, since_ms, until_ms),
            ).fetchall()
        return [(int(ts), str(message)) for ts, message in rows]

    def messages(self, log_group: str) -> list[tuple[int, str]]:
        """Every ``(timestamp_ms, message)`` of a (small) group, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT ts_ms, message FROM logs WHERE log_group = ? ORDER BY ts_ms, id",
                (log_group,),
            ).fetchall()
        return [(int(ts), str(message)) for ts, message in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM logs").fetchone()[0])


def _select(query: LogQuery) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if query.log_group is not None:
        clauses.append("log_group = ?")
        params.append(query.log_group)
    elif not query.request_id:
        raise ValueError("a log query names a log group or a request id")
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
    if query.contains:
        clauses.append("instr(message, ?) > 0")
        params.append(query.contains)
    sql = (
        "SELECT id, ts_ms, log_group, log_stream, request_id, message FROM logs WHERE "
        + " AND ".join(clauses)
        + " ORDER BY id LIMIT ?"
    )
    params.append(max(1, query.limit))
    return sql, params
