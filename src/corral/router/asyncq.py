"""Asynchronous invocations (``InvocationType=Event``): a durable queue and its workers.

Invoke writes the event to SQLite before answering 202 (committed with the other writes of
the moment, ``router.journal``; the 202's request id is the one the function sees, on
every attempt); workers take due events, resolve the function again
(it may have changed or gone), and run them. As AWS documents (``LMI_FACTS.md``,
Asynchronous invocation):

* a function error is retried ``async_max_retries`` times (default 2), after
  ``async_retry_delay_s`` and twice that (AWS: one minute, then two);
* a throttle, or a system error (an environment that is still starting, or that was lost
  under the invocation), puts the event back with a delay that grows exponentially from 1
  second to 5 minutes (``retry_delay_s``), not counted against those retries;
* an event older than six hours is discarded.

An event is deleted only when it is done, so a restart resumes the queue. An event that is
given up (retries exhausted, too old, function gone) is said in the server log as a warning
and counted by reason (``stats``), never counted as delivered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter

from corral.core import errors
from corral.core.arns import Partition
from corral.core.settings import Settings
from corral.core.tasks import TaskGroup
from corral.router.journal import Journal
from corral.router.resolve import resolve
from corral.router.router import InvokeRequest, Router
from corral.runtime.invocation import new_request_id
from corral.store.catalog import Catalog
from corral.store.events import AsyncEvent, EventTable, Write

__all__ = ["AsyncInvoker", "retry_delay_s"]

_log = logging.getLogger("corral.async")
MAX_AGE_S = 6 * 3600.0
_FIRST_RETRY_S = 1.0
_LONGEST_RETRY_S = 300.0
_IDLE_WAIT_S = 30.0  # the longest sleep with nothing due: a safety net, events wake it


def retry_delay_s(throttles: int, rng: random.Random) -> float:
    """How long an event waits after its ``throttles``-th throttle or system error: from 1 s,
    doubling, to at most 5 minutes, a quarter of it random so that events throttled
    together do not all come back together."""
    base = min(_LONGEST_RETRY_S, _FIRST_RETRY_S * 2.0 ** max(0, throttles - 1))
    return max(_FIRST_RETRY_S, base * (0.75 + 0.25 * rng.random()))


class AsyncInvoker:
    """Queues Event invocations durably and runs them in the background.

    ``stats`` counts, by ``(what, function, reason)``: ``received`` events, ``retried``
    attempts (reason ``function_error``, ``throttled`` or ``system_error``), ``dropped``
    events (``RetriesExhausted``, ``EventAgeExceeded``, ``FunctionGone``) and ``delivered``
    ones (the function answered without an error).
    """

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
        self._journal = Journal(events)
        self._router = router
        self._partition = partition
        self._wake = asyncio.Event()
        self._running: set[str] = set()
        self._slots = asyncio.Semaphore(settings.async_workers)
        self._tasks = TaskGroup("async")
        self._rng = random.Random()
        self._queued: int | None = None  # counted once, then kept up to date
        self.stats: Counter[tuple[str, str, str]] = Counter()

    @property
    def completed(self) -> int:
        """Events delivered (run without a function error), all functions together."""
        return sum(n for (what, _, _), n in self.stats.items() if what == "delivered")

    def start(self) -> None:
        self._journal.start()
        self._tasks.spawn(self._run(), name="dispatcher")

    async def stop(self) -> None:
        await self._tasks.cancel_all()
        await self._journal.stop()

    async def enqueue(
        self,
        function_name: str,
        qualifier: str,
        payload: bytes,
        client_context: str,
        request_id: str = "",
    ) -> str:
        """Persist an event (on the disk when this returns, with ``CORRAL_DB_SYNC=full``;
        written from a worker thread, so the loop serves on meanwhile); return its request
        id (``request_id``, or a new one): the id its invocation runs under, every attempt."""
        now = time.time()
        event = AsyncEvent(
            id=request_id or new_request_id(),
            function_name=function_name,
            qualifier=qualifier,
            payload=payload,
            client_context=client_context,
            attempts=0,
            not_before_s=now,
            created_s=now,
        )
        await self._journal.write(Write("add", event=event))
        self._count(+1)
        self.stats[("received", function_name, "")] += 1
        self._wake.set()
        return event.id

    @property
    def pending(self) -> int:
        """Events in the queue (due or waiting for a retry)."""
        if self._queued is None:
            self._queued = self._events.count()
        return self._queued

    def _count(self, change: int) -> None:
        if self._queued is not None:
            self._queued += change

    async def _delete(self, event: AsyncEvent) -> None:
        await self._journal.write(Write("delete", event_id=event.id))
        self._count(-1)

    async def _reschedule(
        self, event: AsyncEvent, attempts: int, delay_s: float, throttles: int
    ) -> None:
        await self._journal.write(
            Write("reschedule", None, event.id, attempts, time.time() + delay_s, throttles)
        )

    async def _run(self) -> None:
        while True:
            try:
                due = await asyncio.to_thread(self._events.due, time.time(), 256)
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
                await asyncio.wait_for(self._wake.wait(), timeout=self._sleep_s())
            except TimeoutError:
                pass

    def _sleep_s(self) -> float:
        """Until the next event is due (the queue is not polled while nothing is)."""
        try:
            next_due = self._events.next_due_s()
        except Exception:
            _log.exception("reading the async queue failed")
            return 1.0
        if next_due is None:
            return _IDLE_WAIT_S
        return min(_IDLE_WAIT_S, max(0.01, next_due - time.time()))

    async def _handle(self, event: AsyncEvent) -> None:
        try:
            await self._attempt(event)
        except Exception:
            _log.exception("async event %s failed unexpectedly; it stays queued", event.id)
            await self._reschedule(event, event.attempts, 5.0, event.throttles)
        finally:
            self._running.discard(event.id)
            self._slots.release()
            self._wake.set()

    async def _attempt(self, event: AsyncEvent) -> None:
        name = event.function_name
        age_s = time.time() - event.created_s
        if age_s > MAX_AGE_S:
            await self._drop(
                event, "EventAgeExceeded", f"it is {age_s:.0f} s old (at most 6 hours)"
            )
            return
        try:
            target = resolve(self._catalog, self._partition, name, event.qualifier or None)
            result = await self._router.invoke(
                InvokeRequest(
                    version=target.version,
                    invoked_arn=target.invoked_arn,
                    payload=event.payload,
                    client_context=event.client_context,
                    request_id=event.id,
                    may_wait=False,
                )
            )
        except errors.Throttled:
            await self._retry_later(event, "throttled")
            return
        except (errors.Conflict, errors.BackendError, errors.EnvironmentGone):
            await self._retry_later(event, "system_error")
            return
        except errors.CorralError as exc:
            await self._drop(event, "FunctionGone", exc.message)
            return
        if not result.is_error:
            self.stats[("delivered", name, "")] += 1
            await self._delete(event)
            return
        if event.attempts < self._settings.async_max_retries:
            attempts = event.attempts + 1
            self.stats[("retried", name, "function_error")] += 1
            delay = self._settings.async_retry_delay_s * attempts
            await self._reschedule(event, attempts, delay, event.throttles)
            return
        await self._drop(
            event,
            "RetriesExhausted",
            f"the function failed ({result.error_type}) on all {event.attempts + 1} attempts",
        )

    async def _retry_later(self, event: AsyncEvent, reason: str) -> None:
        throttles = event.throttles + 1
        self.stats[("retried", event.function_name, reason)] += 1
        await self._reschedule(
            event, event.attempts, retry_delay_s(throttles, self._rng), throttles
        )

    async def _drop(self, event: AsyncEvent, reason: str, why: str) -> None:
        self.stats[("dropped", event.function_name, reason)] += 1
        _log.warning(
            "async event %s of %s dropped (%s): %s",
            event.id,
            event.function_name,
            reason,
            why,
        )
        await self._delete(event)
