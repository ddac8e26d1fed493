"""Invoke: pick an environment with a free slot, hand it the invocation, await the result.

Managed Instances versions are served by their warm environments only: when every slot of
every ready environment is busy the caller gets 429 at once, as on AWS, unless the function
turned on waiting with ``corral:queue-timeout-ms``: it then waits in its version's line
(``waiting.WaitLine``, bounded by ``corral:queue-max``) for a slot that frees or a new
environment, and only gets its 429 when that time is up.
Classic versions run one invocation per environment; without an idle one, the router asks
the scaler for a cold start, within the function's reserved concurrency or the account's
unreserved pool. As on AWS, a function with reserved concurrency draws on its reservation
only, and the unreserved pool (the account's limit less every reservation) is shared by the
functions without one: what reserved functions run never throttles the others (``admit``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from corral.agent.handle import EnvironmentHandle
from corral.agent.registry import EnvironmentRegistry
from corral.core import errors, models
from corral.core.extras import ExtrasOf, FunctionExtras
from corral.core.settings import Settings
from corral.router.selection import choose, least_outstanding
from corral.router.waiting import WaitLine
from corral.runtime.invocation import (
    ChunkSink,
    Invocation,
    InvocationResult,
    LogTail,
    new_request_id,
    new_trace_id,
)
from corral.store.catalog import Catalog
from corral.telemetry.journal import RequestJournal
from corral.telemetry.metrics import InvocationMetrics

__all__ = ["ColdStarter", "InvokeRequest", "Router", "Waker", "admit"]

# How long an invocation of a version woken from zero waits for an instance, on top of the
# environment's init timeout.
_INSTANCE_LAUNCH_WAIT_S = 60.0

ColdStarter = Callable[[models.FunctionVersion], Awaitable[EnvironmentHandle]]
# Wakes a Managed Instances version scaled to zero; True while it is waking.
Waker = Callable[[models.VersionRef], bool]


@dataclass(frozen=True)
class InvokeRequest:
    """One invocation as the API hands it to the router."""

    version: models.FunctionVersion
    invoked_arn: str
    payload: bytes
    client_context: str = ""
    capture_logs: bool = False
    request_id: str = ""
    # A synchronous caller may wait for a slot (corral:queue-timeout-ms); an asynchronous
    # event is not held: its queue retries it.
    may_wait: bool = True
    # InvokeWithResponseStream: takes a streamed response's chunks as they come.
    on_chunk: ChunkSink | None = None


def admit(
    reserved: int | None, function_inflight: int, pool_inflight: int, pool_limit: int
) -> str | None:
    """Why a classic invocation must be throttled now (its 429 ``Reason``), or None.

    Args:
        reserved: the function's reserved concurrency (None: it draws on the pool).
        function_inflight: the function's invocations running now.
        pool_inflight: invocations running now of functions without a reservation.
        pool_limit: the unreserved pool (the account's limit less every reservation).
    """
    if reserved is not None:
        if function_inflight >= reserved:
            return "ReservedFunctionConcurrentInvocationLimitExceeded"
        return None
    if pool_inflight >= pool_limit:
        return "ConcurrentInvocationLimitExceeded"
    return None


class Router:
    """The data path from Invoke to an execution environment."""

    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Catalog,
        registry: EnvironmentRegistry,
        cold_start: ColdStarter,
        metrics: InvocationMetrics | None = None,
        extras: ExtrasOf | None = None,
        wake: Waker | None = None,
        journal: RequestJournal | None = None,
    ) -> None:
        self._journal = journal
        self._settings = settings
        self._extras = extras or (lambda function: FunctionExtras())
        self._wake = wake or (lambda ref: False)
        self._lines: dict[models.VersionRef, WaitLine] = {}
        # The last init failure of a waking version, for the invocations that wait for it.
        self._wake_failures: dict[models.VersionRef, EnvironmentHandle] = {}
        registry.subscribe(ready=self._environment_ready, ended=self._environment_ended)
        self._metrics = metrics
        self._catalog = catalog
        self._registry = registry
        self._cold_start = cold_start
        self._inflight: Counter[str] = Counter()
        # Classic invocations running now of functions without reserved concurrency.
        self._pool_inflight = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def inflight(self) -> int:
        """Classic invocations running now, all functions together."""
        return sum(self._inflight.values())

    async def invoke(self, request: InvokeRequest) -> InvocationResult:
        """Run one invocation and return its result (function errors included).

        Raises:
            errors.Throttled: no environment can take it now.
        """
        journal = self._journal
        if journal is None:
            return await self._invoke(request)
        if not request.request_id:
            request = dataclasses.replace(request, request_id=new_request_id())
        ref = request.version.ref
        entry = journal.start(request.request_id, ref.function, ref.version)
        try:
            result = await self._invoke(request)
        except errors.Throttled as exc:
            entry.outcome = f"throttled: {exc.cause.value}"
            entry.answered_s = time.time()
            raise
        except BaseException:
            entry.outcome = "failed in Corral"
            entry.answered_s = time.time()
            raise
        entry.answered_s = time.time()
        entry.outcome = "success" if result.error_type is None else f"error: {result.error_type}"
        entry.duration_ms = result.duration_ms
        entry.init_duration_ms = result.init_duration_ms
        return result

    async def _invoke(self, request: InvokeRequest) -> InvocationResult:
        version = request.version
        if version.spec.managed is not None:
            return await self._invoke_managed(request)
        function = version.function_name
        pooled = self._check_concurrency(version.ref)
        self._inflight[function] += 1
        self._pool_inflight += pooled
        try:
            environment = self._pick(version.ref)
            if environment is None:
                environment = await self._cold_start(version)
                if environment.failure is not None:
                    if self._metrics is not None:
                        self._metrics.record(function, version.version, 0.0, True)
                    return _init_failure_result(environment)
                if environment.state is not models.EnvironmentState.READY:
                    raise errors.Throttled("Rate Exceeded.")
            return await self._run(environment, request)
        finally:
            self._pool_inflight -= pooled
            remaining = self._inflight[function] - 1
            if remaining:
                self._inflight[function] = remaining
            else:
                del self._inflight[function]

    async def _invoke_managed(self, request: InvokeRequest) -> InvocationResult:
        """Managed Instances: a warm environment with a free slot, or 429 at once (or after
        waiting in line, with ``corral:queue-timeout-ms``)."""
        ref = request.version.ref
        line = self._lines.get(ref)
        environment, cause = (
            (None, "concurrency") if line else choose(self._registry.ready_for(ref))
        )
        waited_s = 0.0
        if environment is None and self._wake(ref):
            # Scaled to zero (corral:idle-timeout-s): wait for the cold start, as a classic
            # invocation does; the init is not taken from the function's timeout.
            if request.may_wait:
                environment, failed = await self._wait_for_wake(request)
                if failed is not None:
                    return _init_failure_result(failed)
        elif environment is None:
            environment, cause, waited_s = await self._wait_for_slot(request, cause)
        if environment is None:
            self._registry.record_throttle(ref, cause)
            raise errors.Throttled("Rate Exceeded.", cause=errors.ThrottleCause(cause))
        return await self._run(environment, request, waited_s)

    async def _wait_for_wake(
        self, request: InvokeRequest
    ) -> tuple[EnvironmentHandle | None, EnvironmentHandle | None]:
        """Wait in the version's line for the first environment of a version woken from
        zero, bounded by the init timeout and an instance's launch. Returns the environment
        (None: none came), or the environment whose init failed meanwhile."""
        ref = request.version.ref
        before = self._wake_failures.get(ref)
        slots = max(request.version.spec.concurrency, 1)
        if self._line_full(ref, self._extras(ref.function).queue_limit(slots)):
            return None, None

        def failed() -> EnvironmentHandle | None:
            failure = self._wake_failures.get(ref)
            return failure if failure is not None and failure is not before else None

        timeout_s = self._settings.managed_init_timeout_s + _INSTANCE_LAUNCH_WAIT_S
        environment, _ = await self._wait_in_line(ref, timeout_s, lambda: failed() is not None)
        return (environment, None) if environment is not None else (None, failed())

    async def _wait_for_slot(
        self, request: InvokeRequest, cause: str
    ) -> tuple[EnvironmentHandle | None, str, float]:
        """Wait in the version's line, if its function asks for it, until a slot is free;
        return the environment (None: 429), the cause of a 429, and the seconds waited."""
        version = request.version
        ref = version.ref
        extras = self._extras(ref.function)
        if not extras.queue_timeout_ms or not request.may_wait:
            return None, cause, 0.0
        slots = sum(e.concurrency for e in self._registry.for_version(ref))
        if self._line_full(ref, extras.queue_limit(slots)):
            return None, cause, 0.0
        loop = asyncio.get_running_loop()
        self._registry.record_saturation(ref)  # a queue is saturation: the scaler adds
        if self._metrics is not None:
            self._metrics.queued(ref.function, ref.version, 1)
        started = loop.time()
        try:
            # The caller's deadline runs from its arrival: what it waits is taken from the
            # function's timeout, and waiting never outlasts it.
            timeout_s = min(extras.queue_timeout_ms / 1000, version.spec.timeout_s)
            environment, last_cause = await self._wait_in_line(ref, timeout_s)
        finally:
            if self._metrics is not None:
                self._metrics.queued(ref.function, ref.version, -1, loop.time() - started)
        return environment, last_cause or cause, loop.time() - started

    def _line_full(self, ref: models.VersionRef, limit: int) -> bool:
        line = self._lines.get(ref)
        return line is not None and len(line) >= limit

    async def _wait_in_line(
        self,
        ref: models.VersionRef,
        timeout_s: float,
        given_up: Callable[[], bool] = lambda: False,
    ) -> tuple[EnvironmentHandle | None, str | None]:
        """Wait in the version's line (first come, first served) until an environment with
        a free slot is ours, ``timeout_s`` passed, or ``given_up()`` says to stop once woken.
        Returns the environment (or None) and why the last look found none (None: no look)."""
        line = self._lines.setdefault(ref, WaitLine())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        cause: str | None = None
        again = False
        try:
            while await line.wait(deadline - loop.time(), again=again):
                if given_up():
                    break
                environment, cause = choose(self._registry.ready_for(ref))
                if environment is not None:
                    return environment, cause
                again = True
        finally:
            if not line:
                self._lines.pop(ref, None)
        return None, cause

    def _slot_freed(self, ref: models.VersionRef) -> None:
        line = self._lines.get(ref)
        if line is not None:
            line.wake_one()

    def _environment_ended(self, environment: EnvironmentHandle) -> None:
        ref = environment.ref
        line = self._lines.get(ref)
        if environment.failure is not None and line is not None and self._wake(ref):
            # The woken version's environment failed its init: its waiters get the error.
            self._wake_failures[ref] = environment
            line.wake_all()

    def _environment_ready(self, environment: EnvironmentHandle) -> None:
        self._wake_failures.pop(environment.ref, None)
        line = self._lines.get(environment.ref)
        if line is not None:
            for _ in range(environment.concurrency):
                line.wake_one()

    async def _run(
        self, environment: EnvironmentHandle, request: InvokeRequest, waited_s: float = 0.0
    ) -> InvocationResult:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        invocation = Invocation(
            request_id=request.request_id or new_request_id(),
            payload=request.payload,
            invoked_arn=request.invoked_arn,
            timeout_s=max(0.001, request.version.spec.timeout_s - waited_s),
            future=loop.create_future(),
            client_context=request.client_context,
            trace_id=new_trace_id(),
            tail=LogTail() if request.capture_logs else None,
            on_chunk=request.on_chunk,
        )
        if request.version.spec.managed is not None:
            ref = request.version.ref
            invocation.on_release = lambda: self._slot_freed(ref)
        if self._journal is not None:
            entry = self._journal.get(invocation.request_id)
            if entry is not None:
                entry.dispatched_s = time.time()
                entry.waited_s = entry.dispatched_s - entry.received_s
                entry.environment_id = environment.id
                entry.instance_id = environment.config.instance_id
        environment.dispatch(invocation)
        result = await invocation.future
        if self._metrics is not None:
            ref = request.version.ref
            self._metrics.record(
                ref.function, ref.version, result.duration_ms / 1000, result.error_type is not None
            )
        return result

    def _pick(self, ref: models.VersionRef) -> EnvironmentHandle | None:
        return least_outstanding(self._registry.ready_for(ref))

    def _check_concurrency(self, ref: models.VersionRef) -> int:
        """Admit a classic invocation or throttle it; return 1 when it draws on the
        unreserved pool (0 when the function has its own reservation).

        Raises:
            errors.Throttled: no concurrency left for it.
        """
        record = self._catalog.function(ref.function)
        reserved = record.reserved_concurrency if record is not None else None
        reason = admit(
            reserved, self._inflight[ref.function], self._pool_inflight, self.unreserved_limit()
        )
        if reason is not None:
            self._registry.record_throttle(ref, "concurrency")
            raise errors.Throttled("Rate Exceeded.", reason=reason)
        return 1 if reserved is None else 0

    def unreserved_limit(self) -> int:
        """The account's concurrency minus what functions reserved."""
        return max(0, self._settings.account_concurrency_limit - self._catalog.reserved_total())


def _init_failure_result(environment: EnvironmentHandle) -> InvocationResult:
    failure = environment.failure
    assert failure is not None
    payload = failure.payload
    try:
        json.loads(payload)
    except ValueError:
        payload = json.dumps(
            {"errorType": failure.error_type, "errorMessage": failure.reason}
        ).encode()
    return InvocationResult(payload=payload, error_type=failure.error_type)
