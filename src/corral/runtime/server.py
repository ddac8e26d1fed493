"""The Lambda Runtime API server of one execution environment.

Contract (``LMI_FACTS.md`` §3.4, what unmodified runtime clients need):

* ``GET /2018-06-01/runtime/invocation/next`` long-polls; many may be open at once (one per
  runtime worker). The first ``/next`` marks the runtime initialised.
* ``POST .../invocation/{id}/response`` and ``.../{id}/error`` answer 202; an unknown id or a
  second answer gets 400 ``InvalidRequestID``; an answer after the caller's deadline gets 410
  ``InvokeTimeout``; a response over 6 MiB + 100 bytes gets 413.
* ``POST .../init/error`` answers 202 the first time and 403 afterwards.
* A streamed response (``Lambda-Runtime-Function-Response-Mode: streaming``, chunked) is
  handed on chunk by chunk as it arrives when its caller streams (``Invocation.on_chunk``),
  else collected as a buffered one; an error mid-stream comes in the trailers
  ``Lambda-Runtime-Function-Error-Type`` and ``-Error-Body`` (base64 JSON).

Invariants:

* ``busy`` counts invocations queued or running here; it drops only when the *runtime*
  answers (or its worker dies), never on the caller's timeout, because Managed Instances
  does not stop timed-out code and the worker stays busy.
* An invocation is written only to a ``/next`` whose peer is still connected, so a worker
  that dies while polling never swallows an invocation.
* ``shared_process`` (Node.js on Managed Instances): one process runs many invocations on
  worker threads, and aws-lambda-ric polls ``/next`` on one connection and answers on
  another (its native client's); a connection is not a worker, so a closed one fails
  nothing (only the process's exit does, in the environment), and idle polls are served
  oldest first so that invocations spread over the threads.

The protocol is a small ``asyncio.Protocol`` over ``httptools`` rather than an ASGI app:
this is the hot path, and every invocation crosses it twice.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import json
import logging
import os
import socket
import time
from typing import Any, Protocol, cast

import httptools

from corral.runtime.invocation import MAX_RESPONSE_BYTES, Invocation, error_payload

__all__ = ["RuntimeApiServer", "RuntimeHooks"]

_log = logging.getLogger("corral.runtime")

_PREFIX = b"/2018-06-01/runtime/"
_NEXT = b"/2018-06-01/runtime/invocation/next"
_INIT_ERROR = b"/2018-06-01/runtime/init/error"
_INVOCATION = b"/2018-06-01/runtime/invocation/"
_ERROR_TYPE_HEADER = b"lambda-runtime-function-error-type"
_ERROR_BODY_HEADER = b"lambda-runtime-function-error-body"
_RESPONSE_MODE_HEADER = b"lambda-runtime-function-response-mode"
_RESPONSE = b"/response"
# A streamed response may be larger than a buffered one (Lambda: 20 MiB).
MAX_STREAMED_BYTES = 20 * 1024 * 1024

_ACCEPTED = (
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
    b'{"status":"OK"}\n'
)


def _status_response(status: bytes, body: dict[str, str]) -> bytes:
    data = json.dumps(body).encode()
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data
    )


_INVALID_ID = _status_response(
    b"400 Bad Request", {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}
)
_TIMED_OUT = _status_response(
    b"410 Gone", {"errorMessage": "Invoke timeout", "errorType": "InvokeTimeout"}
)
_TOO_LARGE = _status_response(
    b"413 Request Entity Too Large",
    {
        "errorMessage": f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
        "errorType": "RequestEntityTooLarge",
    },
)
_INIT_FORBIDDEN = _status_response(
    b"403 Forbidden",
    {"errorMessage": "Init error already reported", "errorType": "InvalidStateTransition"},
)
_NOT_FOUND = _status_response(
    b"404 Not Found", {"errorMessage": "Unknown path", "errorType": "NotFound"}
)
_SHUTTING_DOWN = _status_response(
    b"500 Internal Server Error",
    {"errorMessage": "Execution environment is shutting down", "errorType": "InternalServerError"},
)
_PING = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"


class RuntimeHooks(Protocol):
    """What the execution environment does when the runtime acts."""

    def on_first_next(self) -> None:
        """The runtime finished initialising (its first ``/next``)."""

    def on_poll(self, pid: int | None) -> None:
        """A worker (``pid``) asks for its next invocation."""

    def on_dispatch(self, invocation: Invocation) -> None:
        """An invocation is about to be written to a worker."""

    def on_complete(self, invocation: Invocation, payload: bytes, error_type: str | None) -> None:
        """The runtime answered an invocation (``error_type`` set for ``/error``)."""

    def on_deadline(self, invocation: Invocation) -> None:
        """The caller's deadline passed before the runtime answered."""

    def on_worker_lost(self, invocation: Invocation | None, pid: int | None) -> None:
        """A worker (``pid``, if known) disconnected: while running ``invocation``, or while
        idle (None).

        Runtime workers keep their connection for life, except that a client may open a
        new one after an error answer (a late post's 410): an idle worker's lost connection
        means it exited only if its process is gone.
        """

    def on_init_error(self, error_type: str, body: bytes) -> None:
        """The runtime reported that initialisation failed."""

    def peer_pid(self, peer_port: int) -> int | None:
        """The pid of the process that owns the client end of a connection."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection from a runtime worker."""

    __slots__ = (
        "_server",
        "_transport",
        "_parser",
        "_url",
        "_body",
        "_body_size",
        "_header_name",
        "_error_type",
        "_content_type",
        "_mode",
        "_error_body",
        "_streaming",
        "_peek",
        "peer_port",
        "pid",
        "current",
        "closed",
        "polled",
    )

    def __init__(self, server: RuntimeApiServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._body: list[bytes] = []
        self._body_size = 0
        self._header_name = b""
        self._error_type = b""
        self._content_type = b""
        self._mode = b""
        self._error_body = b""
        self._streaming: Invocation | None = None
        self._peek: socket.socket | None = None
        self.peer_port = 0
        self.pid: int | None = None
        self.current: Invocation | None = None
        self.closed = False
        self.polled = False

    # asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio's.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        peer = transport.get_extra_info("peername")
        self.peer_port = int(peer[1]) if peer else 0
        if sock is not None:
            self._peek = socket.socket(fileno=os.dup(sock.fileno()))
            self._peek.setblocking(False)
        self._server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._peek is not None:
            self._peek.close()
            self._peek = None
        self._server._connection_lost(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    # httptools callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []
        self._body_size = 0
        self._error_type = b""
        self._content_type = b""
        self._mode = b""
        self._error_body = b""
        self._streaming = None

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # Only a few headers (and trailers) matter; compare lengths before lower-casing.
        size = len(name)
        if size == 34:
            lowered = name.lower()
            if lowered == _ERROR_TYPE_HEADER:
                self._error_type = value
            elif lowered == _ERROR_BODY_HEADER:
                self._error_body = value
        elif size == 12 and name.lower() == b"content-type":
            self._content_type = value
        elif size == 37 and name.lower() == _RESPONSE_MODE_HEADER:
            self._mode = value

    def on_headers_complete(self) -> None:
        if self._mode == b"streaming" and self._url.endswith(_RESPONSE):
            self._streaming = self._server._stream_target(self._url)

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._streaming is not None:
            self._server._stream_chunk(self._streaming, body, self._body_size, self.content_type)
        elif self._body_size <= MAX_RESPONSE_BYTES:
            self._body.append(body)

    def on_message_complete(self) -> None:
        self._server._handle(self, self._url, b"".join(self._body), self._body_size)

    # helpers for the server -------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(data)
            if not self._parser.should_keep_alive():
                self._transport.close()

    @property
    def error_type(self) -> str:
        return self._error_type.decode("latin-1")

    @property
    def content_type(self) -> str:
        return self._content_type.decode("latin-1") or "application/octet-stream"

    @property
    def streamed(self) -> bool:
        """Whether the request being answered is a streamed response."""
        return self._mode == b"streaming"

    @property
    def forwarded(self) -> bool:
        """Whether its chunks went to the caller as they came."""
        return self._streaming is not None

    def trailer_error(self) -> bytes | None:
        """The error body a stream ended with (its base64 trailer, decoded), if any."""
        if not self._error_body:
            return None
        try:
            return base64.b64decode(self._error_body, validate=True)
        except binascii.Error:
            return None

    def peer_alive(self) -> bool:
        """Whether the worker is still connected (checked just before writing to it)."""
        if self.closed or self._peek is None:
            return False
        try:
            return self._peek.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class RuntimeApiServer:
    """Serves the Runtime API to the workers of one execution environment."""

    def __init__(
        self, hooks: RuntimeHooks, *, concurrency: int, shared_process: bool = False
    ) -> None:
        self._hooks = hooks
        self.concurrency = concurrency
        self._shared = shared_process
        self.busy = 0
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()
        self._idle: collections.deque[_Connection] = collections.deque()
        self._queue: collections.deque[Invocation] = collections.deque()
        self._running: dict[str, tuple[Invocation, _Connection]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._initialised = False
        self._init_error_reported = False
        self._accepting = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0

    # lifecycle ----------------------------------------------------------------------------
    async def start(self, sock: socket.socket | None = None, host: str = "127.0.0.1") -> int:
        """Listen on ``sock`` (already bound) or on a free port of ``host``; return the port."""
        loop = self._loop = asyncio.get_running_loop()
        if sock is None:
            self._server = await loop.create_server(lambda: _Connection(self), host, 0)
        else:
            self._server = await loop.create_server(lambda: _Connection(self), sock=sock)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> list[Invocation]:
        """Stop serving; return the invocations that never got an answer."""
        self._accepting = False
        if self._server is not None:
            self._server.close()
        for conn in list(self._idle):
            conn.write(_SHUTTING_DOWN)
        self._idle.clear()
        for conn in list(self._connections):
            conn.close()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        orphans = list(self._queue) + [inv for inv, _ in self._running.values()]
        self._queue.clear()
        self._running.clear()
        self.busy = 0
        if self._server is not None:
            await self._server.wait_closed()
        return orphans

    # the router's side ---------------------------------------------------------------------
    @property
    def idle_workers(self) -> int:
        return len(self._idle)

    @property
    def has_free_slot(self) -> bool:
        return self._accepting and self.busy < self.concurrency

    def dispatch(self, invocation: Invocation) -> None:
        """Queue an invocation; it is written to the next worker that polls.

        The caller checked ``has_free_slot``; the queue therefore never holds more than
        ``concurrency`` invocations.
        """
        self.busy += 1
        invocation.deadline_epoch_ms = int((time.time() + invocation.timeout_s) * 1000)
        # The loop is kept: asyncio.get_running_loop() costs a getpid() call each time.
        loop = self._loop or asyncio.get_running_loop()
        self._timers[invocation.request_id] = loop.call_later(
            invocation.timeout_s, self._deadline_passed, invocation
        )
        while self._idle:
            # The most recently parked worker first: its caches are warm. Worker threads of
            # one process share their caches: the longest parked first, so that requests
            # spread over the threads (one busy with a synchronous handler serves nothing).
            conn = self._idle.popleft() if self._shared else self._idle.pop()
            if conn.peer_alive():
                self._send(conn, invocation)
                return
        self._queue.append(invocation)

    def running(self) -> list[Invocation]:
        """Invocations a worker is running now."""
        return [inv for inv, _ in self._running.values()]

    # request handling -----------------------------------------------------------------------
    def _handle(self, conn: _Connection, url: bytes, body: bytes, body_size: int) -> None:
        if url == _NEXT:
            self._next(conn)
        elif url.startswith(_INVOCATION):
            rest = url[len(_INVOCATION) :]
            request_id, _, action = rest.partition(b"/")
            if action == b"response" and conn.streamed:
                self._answer_stream(conn, request_id.decode("latin-1"), body, body_size)
            elif action == b"response":
                self._answer(conn, request_id.decode("latin-1"), body, body_size, None)
            elif action == b"error":
                error_type = conn.error_type or _error_type_from_body(body)
                self._answer(conn, request_id.decode("latin-1"), body, body_size, error_type)
            else:
                conn.write(_NOT_FOUND)
        elif url == _INIT_ERROR:
            self._init_error(conn, body)
        elif url in (b"/2018-06-01/ping", b"/ping"):
            conn.write(_PING)
        else:
            conn.write(_NOT_FOUND)

    def _next(self, conn: _Connection) -> None:
        if not self._accepting:
            conn.write(_SHUTTING_DOWN)
            return
        if conn.pid is None and not self._shared:
            conn.pid = self._hooks.peer_pid(conn.peer_port)
        conn.polled = True
        self._hooks.on_poll(conn.pid)
        if not self._initialised:
            self._initialised = True
            self._hooks.on_first_next()
        if self._queue:
            self._send(conn, self._queue.popleft())
        else:
            self._idle.append(conn)

    def _send(self, conn: _Connection, invocation: Invocation) -> None:
        conn.current = invocation
        invocation.worker_pid = conn.pid
        invocation.dispatched_mono = time.monotonic()
        self._running[invocation.request_id] = (invocation, conn)
        self._hooks.on_dispatch(invocation)
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Lambda-Runtime-Aws-Request-Id: {invocation.request_id}\r\n"
            f"Lambda-Runtime-Deadline-Ms: {invocation.deadline_epoch_ms}\r\n"
            f"Lambda-Runtime-Invoked-Function-Arn: {invocation.invoked_arn}\r\n"
            f"Lambda-Runtime-Trace-Id: {invocation.trace_id}\r\n"
        )
        if invocation.client_context:
            head += f"Lambda-Runtime-Client-Context: {invocation.client_context}\r\n"
        head += f"Content-Length: {len(invocation.payload)}\r\n\r\n"
        conn.write(head.encode() + invocation.payload)

    def _answer(
        self,
        conn: _Connection,
        request_id: str,
        body: bytes,
        body_size: int,
        error_type: str | None,
    ) -> None:
        entry = self._running.pop(request_id, None)
        if entry is None:
            conn.write(_INVALID_ID)
            return
        invocation, worker = entry
        worker.current = None
        self._release(invocation)
        answer = _TIMED_OUT if invocation.future.done() else _ACCEPTED
        if body_size > MAX_RESPONSE_BYTES:
            answer = _TOO_LARGE
            body = json.dumps(
                {
                    "errorMessage": "Response payload size exceeded maximum allowed payload "
                    f"size ({MAX_RESPONSE_BYTES} bytes).",
                    "errorType": "Function.ResponseSizeTooLarge",
                }
            ).encode()
            error_type = "Function.ResponseSizeTooLarge"
        self._hooks.on_complete(invocation, body, error_type)
        # Answer the worker after the caller's response is scheduled: the caller waits,
        # the worker only needs the 202 before it polls again.
        (self._loop or asyncio.get_running_loop()).call_soon(conn.write, answer)

    def _stream_target(self, url: bytes) -> Invocation | None:
        """The invocation a streamed response is for, if its caller takes chunks."""
        request_id = url[len(_INVOCATION) : -len(_RESPONSE)].decode("latin-1")
        entry = self._running.get(request_id)
        if entry is None or entry[0].on_chunk is None or entry[0].future.done():
            return None
        return entry[0]

    def _stream_chunk(self, invocation: Invocation, chunk: bytes, total: int, kind: str) -> None:
        if (
            invocation.on_chunk is not None
            and total <= MAX_STREAMED_BYTES
            and not invocation.future.done()
        ):
            invocation.on_chunk(chunk, kind)

    def _answer_stream(self, conn: _Connection, request_id: str, body: bytes, size: int) -> None:
        """The end of a streamed response: its error trailers, or its size, decide."""
        error_type = conn.error_type or None
        if error_type is not None:
            body = conn.trailer_error() or error_payload(error_type, "")
        elif conn.forwarded and size > MAX_STREAMED_BYTES:
            error_type = "Function.ResponseSizeTooLarge"
            body = error_payload(
                error_type,
                "Response payload size exceeded maximum allowed payload size "
                f"({MAX_STREAMED_BYTES} bytes).",
            )
        elif conn.forwarded:
            body = b""  # the caller has every byte already
        self._answer(conn, request_id, body, 0 if conn.forwarded else size, error_type)

    def _release(self, invocation: Invocation) -> None:
        invocation.runtime_answered = True
        self.busy -= 1
        timer = self._timers.pop(invocation.request_id, None)
        if timer is not None:
            timer.cancel()
        if invocation.on_release is not None:
            invocation.on_release()

    def _deadline_passed(self, invocation: Invocation) -> None:
        self._timers.pop(invocation.request_id, None)
        if invocation.runtime_answered:
            return
        if invocation in self._queue:
            # Never reached a worker: nothing runs, so the slot is free again.
            self._queue.remove(invocation)
            self.busy -= 1
            if invocation.on_release is not None:
                invocation.on_release()
        self._hooks.on_deadline(invocation)

    def _init_error(self, conn: _Connection, body: bytes) -> None:
        if self._init_error_reported:
            conn.write(_INIT_FORBIDDEN)
            return
        self._init_error_reported = True
        conn.write(_ACCEPTED)
        self._hooks.on_init_error(conn.error_type or _error_type_from_body(body), body)

    def _connection_lost(self, conn: _Connection) -> None:
        self._connections.discard(conn)
        try:
            self._idle.remove(conn)
        except ValueError:
            pass
        invocation = conn.current
        conn.current = None
        if self._shared:
            return
        if invocation is not None and not invocation.runtime_answered:
            self._running.pop(invocation.request_id, None)
            self._release(invocation)
            self._hooks.on_worker_lost(invocation, conn.pid)
        elif conn.polled and self._accepting:
            self._hooks.on_worker_lost(None, conn.pid)


def _error_type_from_body(body: bytes) -> str:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return "Runtime.Unknown"
    value = data.get("errorType") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else "Runtime.Unknown"
