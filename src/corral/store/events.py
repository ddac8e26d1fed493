"""The ``async_events`` table: the durable queue behind ``InvocationType=Event``.

An event is written before Invoke answers 202 and deleted only once it has been handled
(succeeded, or failed its last retry), so a restart finds every queued event again.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.store.db import Database

__all__ = ["AsyncEvent", "EventTable", "Write"]


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


@dataclass(frozen=True)
class Write:
    """One change of the queue: ``add`` an event, ``reschedule`` it, or ``delete`` it."""

    kind: str
    event: AsyncEvent | None = None
    event_id: str = ""
    attempts: int = 0
    not_before_s: float = 0.0
    throttles: int = 0


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
                    event = write.event
                    assert event is not None
                    conn.execute(
                        "INSERT INTO async_events (id, function_name, qualifier, payload,"
                        " client_context, attempts, not_before_s, created_s, throttles)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                        ),
                    )
                elif write.kind == "reschedule":
                    conn.execute(
                        "UPDATE async_events SET attempts = ?, not_before_s = ?, throttles = ?"
                        " WHERE id = ?",
                        (write.attempts, write.not_before_s, write.throttles, write.event_id),
                    )
                elif write.kind == "delete":
                    conn.execute("DELETE FROM async_events WHERE id = ?", (write.event_id,))
                else:
                    raise ValueError(f"unknown write {write.kind!r}")

    def due(self, now_s: float, limit: int) -> list[AsyncEvent]:
        """Events whose retry time has come, oldest first."""
        rows = self._db.query(
            "SELECT * FROM async_events WHERE not_before_s <= ? ORDER BY not_before_s LIMIT ?",
            (now_s, limit),
        )
        return [
            AsyncEvent(
                id=r["id"],
                function_name=r["function_name"],
                qualifier=r["qualifier"],
                payload=bytes(r["payload"]),
                client_context=r["client_context"],
                attempts=r["attempts"],
                not_before_s=r["not_before_s"],
                created_s=r["created_s"],
                throttles=r["throttles"],
            )
            for r in rows
        ]

    def next_due_s(self) -> float | None:
        """When the earliest event is due, or None when the queue is empty."""
        value = self._db.query("SELECT MIN(not_before_s) FROM async_events")[0][0]
        return None if value is None else float(value)

    def count(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM async_events")[0][0])

    def reschedule(
        self, event_id: str, attempts: int, not_before_s: float, throttles: int = 0
    ) -> None:
        self.apply([Write("reschedule", None, event_id, attempts, not_before_s, throttles)])

    def delete(self, event_id: str) -> None:
        self.apply([Write("delete", event_id=event_id)])
