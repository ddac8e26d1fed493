"""Asynchronous invocations (``InvocationType=Event``): a durable queue and its workers.

Invoke writes the event to SQLite before answering 202; workers take due events, resolve
the function again (it may have changed or gone), and run them. As on AWS, a function error
is retried ``async_max_retries`` times (default 2) after ``async_retry_delay_s`` and twice
that; a throttle or an environment that is still starting is retried with backoff for up to
six hours. An event is deleted only when it is done, so a restart resumes the queue.
"""

from __future__ import annotations

import asyncio
import logging
import time

from corral.core import errors
from corral.core.arns import Partition
from corral.core.settings import Settings
from corral.core.tasks import TaskGroup
from corral.router.resolve import resolve
from corral.router.router import InvokeRequest, Router
from corral.runtime.invocation import new_request_id
from corral.store.catalog import Catalog
from corral.store.events import AsyncEvent, EventTable

__all__ = ["AsyncInvoker"]

_log = logging.getLogger("corral.async")
_MAX_AGE_S = 6 * 3600.0
_THROTTLE_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class AsyncInvoker:
    """Queues Event invocations durably and runs them in the background."""

    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Catalog,
        events: EventTable,
        router: Router,
        partition: Partition,
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._events = events
        self._router = router
        self._partition = partition
        self._wake = asyncio.Event()
        self._running: set[str] = set()
        self._slots = asyncio.Semaphore(settings.async_workers)
        self._tasks = TaskGroup("async")
        self.completed = 0

    def start(self) -> None:
        self._tasks.spawn(self._run(), name="dispatcher")

    async def stop(self) -> None:
        await self._tasks.cancel_all()

    def enqueue(
        self, function_name: str, qualifier: str, payload: bytes, client_context: str
    ) -> str:
        """Persist an event; return its request id."""
        now = time.time()
        event = AsyncEvent(
            id=new_request_id(),
            function_name=function_name,
            qualifier=qualifier,
            payload=payload,
            client_context=client_context,
            attempts=0,
            not_before_s=now,
            created_s=now,
        )
        self._events.add(event)
        self._wake.set()
        return event.id

    @property
    def pending(self) -> int:
        return self._events.count()

    async def _run(self) -> None:
        while True:
            try:
                due = self._events.due(time.time(), limit=256)
            except Exception:
                _log.exception("reading the async queue failed")
                due = []
            for event in due:
                if event.id in self._running:
                    continue
                await self._slots.acquire()
                self._running.add(event.id)
                self._tasks.spawn(self._handle(event), name=f"event:{event.id[:8]}")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=0.5)
            except TimeoutError:
                pass

    async def _handle(self, event: AsyncEvent) -> None:
        try:
            await self._attempt(event)
        except Exception:
            _log.exception("async event %s failed unexpectedly; it stays queued", event.id)
            self._events.reschedule(event.id, event.attempts, time.time() + 5.0)
        finally:
            self._running.discard(event.id)
            self._slots.release()
            self._wake.set()

    async def _attempt(self, event: AsyncEvent) -> None:
        qualifier = event.qualifier or None
        try:
            target = resolve(self._catalog, self._partition, event.function_name, qualifier)
            result = await self._router.invoke(
                InvokeRequest(
                    version=target.version,
                    invoked_arn=target.invoked_arn,
                    payload=event.payload,
                    client_context=event.client_context,
                    request_id=event.id,
                )
            )
        except (errors.Throttled, errors.Conflict) as exc:
            age = time.time() - event.created_s
            if age > _MAX_AGE_S:
                _log.warning("dropping event %s after %.0f s: %s", event.id, age, exc)
                self._events.delete(event.id)
                return
            delay = _THROTTLE_BACKOFF_S[min(event.attempts, len(_THROTTLE_BACKOFF_S) - 1)]
            self._events.reschedule(event.id, event.attempts, time.time() + delay)
            return
        except errors.CorralError as exc:
            _log.warning("dropping event %s: %s", event.id, exc.message)
            self._events.delete(event.id)
            return
        if result.is_error and event.attempts < self._settings.async_max_retries:
            attempts = event.attempts + 1
            delay = self._settings.async_retry_delay_s * attempts
            self._events.reschedule(event.id, attempts, time.time() + delay)
            return
        self.completed += 1
        self._events.delete(event.id)
