"""Group commits for the async-event queue: many writes, one transaction, one fsync.

With ``CORRAL_DB_SYNC=full`` every commit waits for the disk (about 0.35 ms here). Event
invokes arrive concurrently; committing each alone would serialise them on the disk. The
journal collects the writes made while the previous commit was under way and commits them
together in a worker thread, then wakes every writer: each 202 still waits until its event
is on the disk, and the event loop never waits for the disk at all.

Writes are applied in the order they were made (an event's delete never overtakes its
insert).
"""

from __future__ import annotations

import asyncio
import logging

from corral.core.tasks import TaskGroup
from corral.store.events import EventTable, Write

__all__ = ["Journal"]

_log = logging.getLogger("corral.async")


class Journal:
    """Writes to the event table, committed in groups by one background task."""

    def __init__(self, events: EventTable) -> None:
        self._events = events
        self._pending: list[tuple[Write, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._tasks = TaskGroup("journal")
        self.commits = 0
        self.writes = 0

    def start(self) -> None:
        self._tasks.spawn(self._run(), name="commit")

    async def stop(self) -> None:
        """Commit what is pending, then stop."""
        await self._commit()
        await self._tasks.cancel_all()

    async def write(self, write: Write) -> None:
        """Make one write; return once it is committed.

        Raises:
            Exception: whatever the database raised for the group it was in.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        self._wake.set()
        await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._commit()

    async def _commit(self) -> None:
        if not self._pending:
            return
        group, self._pending = self._pending, []
        try:
            await asyncio.to_thread(self._events.apply, [write for write, _ in group])
        except Exception as exc:
            _log.error("writing %d queued-event changes failed: %s", len(group), exc)
            _settle(group, exc)
            return
        self.commits += 1
        self.writes += len(group)
        _settle(group, None)


def _settle(group: list[tuple[Write, asyncio.Future[None]]], exc: Exception | None) -> None:
    for _, future in group:
        if future.done():
            continue
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)
            future.exception()  # a writer that gave up waiting is not an error
