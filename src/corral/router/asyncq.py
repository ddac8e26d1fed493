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
* an event older than six hours is discarded;
* ``PutFunctionEventInvokeConfig`` of the invoked qualifier changes the retries (0-2) and the
  age (60 s to 6 hours), and names destinations: a Lambda function that gets the invocation
  record (``destination_record``) asynchronously, ``OnSuccess`` or ``OnFailure``.

An event is deleted only when it is done, in the same transaction that queues its record
for a destination, so a restart resumes the queue and loses nothing. A record is an async
event of its target function (kind ``destination``): the target's own configuration
applies to it. What is given up without an OnFailure destination (retries exhausted, too
old, function gone, a destination function that does not exist) is kept in the failed
table (``corral events failed``; AWS discards it), said in the server log and counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter, defaultdict
from typing import Any

from corral.core import errors, models
from corral.core.arns import Partition
from corral.core.clock import iso_timestamp_z
from corral.core.settings import Settings
from corral.core.tasks import TaskGroup
from corral.router.journal import Journal
from corral.router.resolve import resolve
from corral.router.router import InvokeRequest, Router
from corral.runtime.invocation import InvocationResult, new_request_id
from corral.store.catalog import Catalog
from corral.store.events import RECORD, AsyncEvent, EventTable, FailedEvent, Write

__all__ = ["AsyncInvoker", "destination_record", "retry_delay_s"]

_log = logging.getLogger("corral.async")
MAX_AGE_S = 6 * 3600.0
_FIRST_RETRY_S = 1.0
_LONGEST_RETRY_S = 300.0
_IDLE_WAIT_S = 30.0  # the longest sleep with nothing due: a safety net, events wake it


def destination_record(
    event: AsyncEvent,
    *,
    function_arn: str,
    condition: str,
    invoke_count: int,
    executed_version: str | None,
    result: InvocationResult | None,
    now_s: float,
) -> bytes:
    """The invocation record a destination gets, as AWS writes it (``LMI_FACTS.md``,
    Asynchronous invocation): the request, and the last response when there was one."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": iso_timestamp_z(now_s),
        "requestContext": {
            "requestId": event.id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": _json_or_text(event.payload),
    }
    if result is not None:
        context: dict[str, Any] = {"statusCode": 200, "executedVersion": executed_version}
        if result.is_error:
            context["functionError"] = "Unhandled"
        record["responseContext"] = context
        record["responsePayload"] = _json_or_text(result.payload)
    return json.dumps(record).encode()


def _json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload) if payload.strip() else None
    except ValueError:
        return payload.decode("utf-8", "replace")


def retry_delay_s(throttles: int, rng: random.Random) -> float:
    """How long an event waits after its ``throttles``-th throttle or system error: from 1 s,
    doubling, to at most 5 minutes, a quarter of it random so that events throttled
    together do not all come back together."""
    base = min(_LONGEST_RETRY_S, _FIRST_RETRY_S * 2.0 ** max(0, throttles - 1))
    return max(_FIRST_RETRY_S, base * (0.75 + 0.25 * rng.random()))


class AsyncInvoker:
    """Queues Event invocations durably and runs them in the background.

    ``stats`` counts, by ``(what, function, reason)``: ``received`` events, ``retried``
    attempts (reason ``function_error``, ``throttled``, ``system_error`` or
    ``destination_unreachable``), ``dropped`` events (``RetriesExhausted``,
    ``EventAgeExceeded``, ``FunctionGone``, ``DestinationUnreachable``), ``delivered`` ones
    (the function answered without an error), ``attempted`` invocations and records
    ``sent_to_destination`` (reason: their condition).
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
        self._failed: int | None = None  # counted when asked after a change
        self.stats: Counter[tuple[str, str, str]] = Counter()
        # Seconds from queueing to each attempt, summed by function (AWS's AsyncEventAge; the
        # attempts are ``stats[("attempted", function, "")]``).
        self.age_sum_s: defaultdict[str, float] = defaultdict(float)

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

    def oldest_age_s(self) -> float:
        """Age of the oldest queued event (0 when none)."""
        oldest = self._events.oldest_created_s()
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    @property
    def pending(self) -> int:
        """Events in the queue (due or waiting for a retry)."""
        if self._queued is None:
            self._queued = self._events.count()
        return self._queued

    def _count(self, change: int) -> None:
        if self._queued is not None:
            self._queued += change

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
        qualifier = event.qualifier or models.LATEST
        config = self._catalog.event_invoke_config(name, qualifier)
        max_age_s = MAX_AGE_S
        if config is not None and config.max_event_age_s is not None:
            max_age_s = float(config.max_event_age_s)
        age_s = time.time() - event.created_s
        if age_s >= max_age_s:
            await self._give_up(
                event,
                config,
                "EventAgeExceeded",
                f"it is {age_s:.0f} s old (at most {max_age_s:.0f} s)",
            )
            return
        self.stats[("attempted", name, "")] += 1
        self.age_sum_s[name] += age_s
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
            await self._retry_later(event, "throttled", max_age_s)
            return
        except (errors.Conflict, errors.BackendError, errors.EnvironmentGone):
            await self._retry_later(event, "system_error", max_age_s)
            return
        except errors.CorralError as exc:
            if (
                event.kind == RECORD
                and event.throttles + 1 < self._settings.async_destination_attempts
            ):
                await self._retry_later(event, "destination_unreachable", max_age_s)
                return
            reason = "DestinationUnreachable" if event.kind == RECORD else "FunctionGone"
            await self._give_up(event, None, reason, exc.message)
            return
        executed = target.version.version
        if not result.is_error:
            self.stats[("delivered", name, "")] += 1
            record = None
            if config is not None and config.on_success:
                record = self._record(
                    event, config.on_success, "Success", event.attempts + 1, executed, result
                )
            await self._finish(event, record=record)
            return
        retries = self._settings.async_max_retries
        if config is not None and config.max_retry_attempts is not None:
            retries = config.max_retry_attempts
        if event.attempts < retries:
            attempts = event.attempts + 1
            self.stats[("retried", name, "function_error")] += 1
            delay = self._settings.async_retry_delay_s * attempts
            await self._reschedule(
                event, attempts, self._capped(event, delay, max_age_s), event.throttles
            )
            return
        await self._give_up(
            event,
            config,
            "RetriesExhausted",
            f"the function failed ({result.error_type}) on all {event.attempts + 1} attempts",
            executed=executed,
            result=result,
        )

    @staticmethod
    def _capped(event: AsyncEvent, delay_s: float, max_age_s: float) -> float:
        """A retry never waits past the event's age limit: it is given up when it is due."""
        return max(0.0, min(delay_s, event.created_s + max_age_s - time.time()))

    async def _retry_later(self, event: AsyncEvent, reason: str, max_age_s: float) -> None:
        throttles = event.throttles + 1
        self.stats[("retried", event.function_name, reason)] += 1
        delay = self._capped(event, retry_delay_s(throttles, self._rng), max_age_s)
        await self._reschedule(event, event.attempts, delay, throttles)

    def _record(
        self,
        event: AsyncEvent,
        destination: str,
        condition: str,
        invoke_count: int,
        executed: str | None,
        result: InvocationResult | None,
    ) -> AsyncEvent:
        """The record for ``destination`` (a function ARN), as a queued event of it."""
        now = time.time()
        name, _, qualifier = destination.split(":function:", 1)[1].partition(":")
        arn = self._partition.function_arn(event.function_name, event.qualifier or models.LATEST)
        payload = destination_record(
            event,
            function_arn=arn,
            condition=condition,
            invoke_count=invoke_count,
            executed_version=executed,
            result=result,
            now_s=now,
        )
        self.stats[("sent_to_destination", event.function_name, condition)] += 1
        return AsyncEvent(
            id=new_request_id(),
            function_name=name,
            qualifier=qualifier,
            payload=payload,
            client_context="",
            attempts=0,
            not_before_s=now,
            created_s=now,
            kind=RECORD,
        )

    async def _finish(
        self,
        event: AsyncEvent,
        *,
        record: AsyncEvent | None = None,
        failed: FailedEvent | None = None,
    ) -> None:
        await self._journal.write(Write("finish", event=record, event_id=event.id, failed=failed))
        if record is None:
            self._count(-1)
        else:
            self._wake.set()

    async def _give_up(
        self,
        event: AsyncEvent,
        config: models.EventInvokeConfig | None,
        reason: str,
        why: str,
        *,
        executed: str | None = None,
        result: InvocationResult | None = None,
    ) -> None:
        """Send the event's record to its OnFailure destination, or keep it as failed."""
        self.stats[("dropped", event.function_name, reason)] += 1
        if config is not None and config.on_failure:
            count = event.attempts + (1 if result is not None else 0)
            record = self._record(event, config.on_failure, reason, count, executed, result)
            _log.info(
                "async event %s of %s failed (%s): %s; its record goes to %s",
                event.id,
                event.function_name,
                reason,
                why,
                config.on_failure,
            )
            await self._finish(event, record=record)
            return
        _log.warning(
            "async event %s of %s given up (%s): %s; kept in `corral events failed`",
            event.id,
            event.function_name,
            reason,
            why,
        )
        failed = FailedEvent(
            id=event.id,
            kind=event.kind,
            function_name=event.function_name,
            qualifier=event.qualifier,
            payload=event.payload,
            reason=reason,
            detail=why,
            attempts=event.attempts + (1 if result is not None else 0),
            created_s=event.created_s,
            failed_s=time.time(),
        )
        await self._finish(event, failed=failed)
        self._failed = None

    # given up ---------------------------------------------------------------------------
    @property
    def failed_count(self) -> int:
        """Entries in the failed table."""
        if self._failed is None:
            self._failed = self._events.failed_count()
        return self._failed

    async def failed(self, limit: int | None) -> list[FailedEvent]:
        """What was given up, newest first (``limit`` entries, or all)."""
        return await asyncio.to_thread(self._events.failed, limit)

    async def redrive(self, ids: list[str]) -> int:
        """Queue failed entries again (as new events: attempts and age start over)."""
        known = {f.id for f in await self.failed(None)}
        chosen = [i for i in ids if i in known]
        for failed_id in chosen:
            await self._journal.write(
                Write("redrive", event_id=failed_id, not_before_s=time.time())
            )
        self._queued = None
        self._failed = None
        self._wake.set()
        return len(chosen)

    async def purge(self, ids: list[str] | None) -> int:
        gone = await asyncio.to_thread(self._events.purge_failed, ids)
        self._failed = None
        return gone
