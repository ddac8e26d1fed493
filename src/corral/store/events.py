"""The ``async_events`` table, the durable queue behind ``InvocationType=Event``, and the
``failed_events`` table, where what was given up is kept (``corral events failed``).

An event is written before Invoke answers 202 and deleted only once it has been handled;
handling it and queueing what follows (a destination record for another function, or a
failed entry) is one transaction, so a restart finds every event and record again, once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from corral.store.db import Database

__all__ = ["EVENT", "RECORD", "AsyncEvent", "EventTable", "FailedEvent", "Write"]

# Kinds of queued events: an invocation, or a destination record for its target function.
EVENT = "event"
RECORD = "destination"


@dataclass(frozen=True)
class AsyncEvent:
    """One queued asynchronous invocation."""

    id: str
    function_name: str
    qualifier: str
    payload: bytes
    client_context: str
    attempts: int
    not_before_s: float
    created_s: float
    # Attempts that met a throttle or a system error (not counted in ``attempts``).
    throttles: int = 0
    kind: str = EVENT


@dataclass(frozen=True)
class FailedEvent:
    """An event or destination record given up: why, and everything needed to redrive it."""

    id: str
    kind: str
    function_name: str
    qualifier: str
    payload: bytes
    reason: str
    detail: str
    attempts: int
    created_s: float
    failed_s: float


@dataclass(frozen=True)
class Write:
    """One change of the queue: ``add`` an event, ``reschedule`` it, ``delete`` it, or
    ``finish`` it (delete it and, in the same transaction, queue ``event`` (a destination
    record) and/or keep ``failed``); ``redrive`` queues a failed entry again."""

    kind: str
    event: AsyncEvent | None = None
    event_id: str = ""
    attempts: int = 0
    not_before_s: float = 0.0
    throttles: int = 0
    failed: FailedEvent | None = None


class EventTable:
    """Rows of ``async_events``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, event: AsyncEvent) -> None:
        self.apply([Write("add", event=event)])

    def apply(self, writes: list[Write]) -> None:
        """Make every write, in order, in one transaction (one commit)."""
        with self._db.transaction() as conn:
            for write in writes:
                if write.kind == "add":
                    assert write.event is not None
                    _insert(conn, write.event)
                elif write.kind == "reschedule":
                    conn.execute(
                        "UPDATE async_events SET attempts = ?, not_before_s = ?, throttles = ?"
                        " WHERE id = ?",
                        (write.attempts, write.not_before_s, write.throttles, write.event_id),
                    )
                elif write.kind == "delete":
                    conn.execute("DELETE FROM async_events WHERE id = ?", (write.event_id,))
                elif write.kind == "finish":
                    conn.execute("DELETE FROM async_events WHERE id = ?", (write.event_id,))
                    if write.event is not None:
                        _insert(conn, write.event)
                    if write.failed is not None:
                        _keep_failed(conn, write.failed)
                elif write.kind == "redrive":
                    _redrive(conn, write.event_id, write.not_before_s)
                else:
                    raise ValueError(f"unknown write {write.kind!r}")

    def due(self, now_s: float, limit: int) -> list[AsyncEvent]:
        """Events whose retry time has come, oldest first."""
        rows = self._db.query(
            "SELECT * FROM async_events WHERE not_before_s <= ? ORDER BY not_before_s LIMIT ?",
            (now_s, limit),
        )
        return [_event(r) for r in rows]

    def next_due_s(self) -> float | None:
        """When the earliest event is due, or None when the queue is empty."""
        value = self._db.query("SELECT MIN(not_before_s) FROM async_events")[0][0]
        return None if value is None else float(value)

    def oldest_created_s(self) -> float | None:
        value = self._db.query("SELECT MIN(created_s) FROM async_events")[0][0]
        return None if value is None else float(value)

    def count(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM async_events")[0][0])

    def reschedule(
        self, event_id: str, attempts: int, not_before_s: float, throttles: int = 0
    ) -> None:
        self.apply([Write("reschedule", None, event_id, attempts, not_before_s, throttles)])

    def delete(self, event_id: str) -> None:
        self.apply([Write("delete", event_id=event_id)])

    # given up ---------------------------------------------------------------------------
    def failed(self, limit: int | None = None) -> list[FailedEvent]:
        """What was given up, newest first (all of it when ``limit`` is None)."""
        rows = self._db.query(
            "SELECT * FROM failed_events ORDER BY failed_s DESC, id LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return [
            FailedEvent(
                id=r["id"],
                kind=r["kind"],
                function_name=r["function_name"],
                qualifier=r["qualifier"],
                payload=bytes(r["payload"]),
                reason=r["reason"],
                detail=r["detail"],
                attempts=r["attempts"],
                created_s=r["created_s"],
                failed_s=r["failed_s"],
            )
            for r in rows
        ]

    def failed_count(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM failed_events")[0][0])

    def purge_failed(self, ids: list[str] | None) -> int:
        """Forget given-up entries (``ids``, or all); returns how many went."""
        with self._db.transaction() as conn:
            if ids is None:
                return conn.execute("DELETE FROM failed_events").rowcount
            return sum(
                conn.execute("DELETE FROM failed_events WHERE id = ?", (i,)).rowcount for i in ids
            )


def _event(r: Any) -> AsyncEvent:
    return AsyncEvent(
        id=r["id"],
        function_name=r["function_name"],
        qualifier=r["qualifier"],
        payload=bytes(r["payload"]),
        client_context=r["client_context"],
        attempts=r["attempts"],
        not_before_s=r["not_before_s"],
        created_s=r["created_s"],
        throttles=r["throttles"],
        kind=r["kind"],
    )


def _insert(conn: sqlite3.Connection, event: AsyncEvent) -> None:
    conn.execute(
        "INSERT INTO async_events (id, function_name, qualifier, payload, client_context,"
        " attempts, not_before_s, created_s, throttles, kind)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.id,
            event.function_name,
            event.qualifier,
            event.payload,
            event.client_context,
            event.attempts,
            event.not_before_s,
            event.created_s,
            event.throttles,
            event.kind,
        ),
    )


def _keep_failed(conn: sqlite3.Connection, failed: FailedEvent) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO failed_events (id, kind, function_name, qualifier, payload,"
        " reason, detail, attempts, created_s, failed_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            failed.id,
            failed.kind,
            failed.function_name,
            failed.qualifier,
            failed.payload,
            failed.reason,
            failed.detail,
            failed.attempts,
            failed.created_s,
            failed.failed_s,
        ),
    )


def _redrive(conn: sqlite3.Connection, failed_id: str, now_s: float) -> None:
    """Queue a failed entry again as new (its id kept: the request id it runs under)."""
    rows = conn.execute("SELECT * FROM failed_events WHERE id = ?", (failed_id,)).fetchall()
    if not rows:
        return
    r = rows[0]
    conn.execute("DELETE FROM failed_events WHERE id = ?", (failed_id,))
    conn.execute("DELETE FROM async_events WHERE id = ?", (failed_id,))
    _insert(
        conn,
        AsyncEvent(
            id=r["id"],
            function_name=r["function_name"],
            qualifier=r["qualifier"],
            payload=bytes(r["payload"]),
            client_context="",
            attempts=0,
            not_before_s=now_s,
            created_s=now_s,
            kind=r["kind"],
        ),
    )
