"""``InvokeWithResponseStream``: a function's response handed to the caller as it is written.

``POST /2021-11-15/functions/{FunctionName}/response-streaming-invocations`` answers 200 with
the function's stream content type (``Content-Type``, as botocore's model maps
``ResponseStreamContentType``) and an event stream body (``api.eventstream``): a
``PayloadChunk`` per chunk the runtime writes, as it arrives, then one ``InvokeComplete``
with ``ErrorCode``/``ErrorDetails`` when the function failed (also mid-stream) and
``LogResult`` for ``LogType=Tail``. A function that does not stream (every Python function;
or one reached through a remote instance, whose agent link carries whole answers) gets its
buffered answer as one chunk, as Lambda does. What fails before the first byte (a bad
request, a throttle, an unknown function) is an ordinary Lambda error response.

Callers: ``api.app.CorralApp`` (in front of the Starlette routes, as Invoke).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import Any

from corral.api import eventstream
from corral.api.invoke import Call, error_answer, posts_to, read_call
from corral.api.services import Services
from corral.router.router import InvokeRequest
from corral.runtime.invocation import TAIL_BYTES, InvocationResult, new_request_id

__all__ = ["StreamingInvokeEndpoint", "is_streaming_invoke"]

_PREFIX = "/2021-11-15/functions/"
_SUFFIX = "/response-streaming-invocations"
_TYPES = ("RequestResponse", "DryRun")
_DEFAULT_TYPE = "application/octet-stream"

Scope = dict[str, Any]
# A chunk and the stream's content type; None ends the chunks.
_Item = tuple[bytes, str] | None


def is_streaming_invoke(scope: Scope) -> bool:
    return posts_to(scope, _PREFIX, _SUFFIX)


class StreamingInvokeEndpoint:
    """Serves ``InvokeWithResponseStream``."""

    def __init__(self, services: Services) -> None:
        self._svc = services

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        request_id = new_request_id()
        try:
            call = await read_call(self._svc, scope, receive, _PREFIX, _SUFFIX, _TYPES)
        except Exception as exc:
            await _send_whole(send, request_id, *error_answer(exc))
            return
        executed = (b"x-amz-executed-version", call.target.version.version.encode())
        if call.invocation_type == "DryRun":
            await _send_whole(send, request_id, 204, [executed], b"")
            return
        await _Stream(self._svc, call, request_id, executed, send).run()


class _Stream:
    """One streamed invocation: chunks go out as they come, the result ends the stream."""

    def __init__(
        self,
        svc: Services,
        call: Call,
        request_id: str,
        executed: tuple[bytes, bytes],
        send: Any,
    ) -> None:
        self._svc = svc
        self._call = call
        self._request_id = request_id
        self._executed = executed
        self._send = send
        self._chunks: asyncio.Queue[_Item] = asyncio.Queue()
        self._started = False
        self._streamed = False
        self._caller_gone = False

    async def run(self) -> None:
        invoked = asyncio.ensure_future(self._invoke())
        try:
            await self._pump(invoked)
        finally:
            if not invoked.done():
                invoked.cancel()

    async def _invoke(self) -> InvocationResult:
        call = self._call
        try:
            return await self._svc.router.invoke(
                InvokeRequest(
                    version=call.target.version,
                    invoked_arn=call.target.invoked_arn,
                    payload=call.payload or b"{}",
                    client_context=call.client_context,
                    capture_logs=call.log_type == "Tail",
                    request_id=self._request_id,
                    on_chunk=lambda chunk, kind: self._chunks.put_nowait((chunk, kind)),
                )
            )
        finally:
            self._chunks.put_nowait(None)

    async def _pump(self, invoked: asyncio.Future[InvocationResult]) -> None:
        """Send chunks until the invocation ends, then its end."""
        while (item := await self._chunks.get()) is not None:
            chunk, kind = item
            self._streamed = True
            await self._write(eventstream.payload_chunk(chunk), kind)
        try:
            result = invoked.result()
        except Exception as exc:
            if not self._started:
                await _send_whole(self._send, self._request_id, *error_answer(exc))
                return
            await self._finish(eventstream.invoke_complete("ServiceException", str(exc)))
            return
        await self._complete(result)

    async def _complete(self, result: InvocationResult) -> None:
        if not self._streamed and result.payload and not result.is_error:
            await self._write(eventstream.payload_chunk(result.payload), _DEFAULT_TYPE)
        log_result = None
        if self._call.log_type == "Tail":
            text = b"\n".join(result.log_lines) + b"\n"
            log_result = base64.b64encode(text[-TAIL_BYTES:]).decode()
        error_code = error_details = None
        if result.is_error:
            error_code, error_details = _error_of(result)
        await self._finish(eventstream.invoke_complete(error_code, error_details, log_result))

    async def _write(self, frame: bytes, content_type: str) -> None:
        if self._caller_gone:
            return
        try:
            if not self._started:
                self._started = True
                await self._send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"x-amzn-requestid", self._request_id.encode()),
                            (b"content-type", content_type.encode()),
                            self._executed,
                        ],
                    }
                )
            await self._send({"type": "http.response.body", "body": frame, "more_body": True})
        except OSError:
            self._caller_gone = True  # the function runs on; its answer is dropped

    async def _finish(self, frame: bytes) -> None:
        await self._write(frame, _DEFAULT_TYPE)
        if not self._caller_gone:
            with contextlib.suppress(OSError):
                await self._send({"type": "http.response.body", "body": b""})


def _error_of(result: InvocationResult) -> tuple[str, str]:
    """``ErrorCode`` and ``ErrorDetails`` of a failed invocation: its error type, and the
    message of its error body (the body itself when it has none)."""
    error_type = result.error_type or "Unhandled"
    details = result.payload.decode("utf-8", "replace")
    with contextlib.suppress(ValueError):
        body = json.loads(result.payload)
        if isinstance(body, dict) and isinstance(body.get("errorMessage"), str):
            details = body["errorMessage"]
    return error_type, details


async def _send_whole(
    send: Any, request_id: str, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    headers = [
        *headers,
        (b"x-amzn-requestid", request_id.encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
