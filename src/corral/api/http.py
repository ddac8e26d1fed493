"""HTTP plumbing shared by the routes: bounded body reads, JSON answers, error answers.

Every route is wrapped by ``handler``: a ``CorralError`` becomes its Lambda error, anything
else is a logged bug answered as ``ServiceException``; every answer carries a request id.
"""

from __future__ import annotations

import functools
import json
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from corral.api import lambda_errors
from corral.api.body import Body, parse_json_object
from corral.api.limits import control_limit
from corral.core import errors
from corral.runtime.invocation import new_request_id

__all__ = [
    "ClientGone",
    "error_response",
    "handler",
    "json_response",
    "query",
    "read_body",
    "read_json",
    "receive_body",
]

Handler = Callable[[Request], Awaitable[Response]]


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    body = b"" if data is None else json.dumps(data).encode()
    all_headers = {"x-amzn-RequestId": new_request_id()}
    if headers:
        all_headers.update(headers)
    return Response(body, status_code=status, headers=all_headers, media_type="application/json")


def error_response(error: lambda_errors.LambdaError) -> Response:
    headers = {"x-amzn-ErrorType": error.name, "x-amzn-RequestId": new_request_id()}
    for key, value in error.headers:
        headers[key.decode()] = value.decode()
    return Response(
        error.body, status_code=error.status, headers=headers, media_type="application/json"
    )


def handler(func: Handler) -> Handler:
    """Wrap a route so every failure is a well-formed Lambda error."""

    @functools.wraps(func)
    async def wrapped(request: Request) -> Response:
        try:
            return await func(request)
        except errors.CorralError as exc:
            return error_response(lambda_errors.from_exception(exc))
        except Exception as exc:  # a bug: answer, log, keep serving
            return error_response(lambda_errors.service_error(exc))

    return wrapped


class ClientGone(Exception):
    """The client disconnected before sending its whole body."""


async def receive_body(
    receive: Any,
    declared: int,
    limit: int,
    too_large: Callable[[int], errors.InvalidRequest],
) -> bytes:
    """The body of an ASGI request, refusing more than ``limit`` bytes (declared in
    Content-Length, ``declared``, or found while reading).

    Raises:
        errors.InvalidRequest: ``too_large(size)``.
        ClientGone: the client disconnected first.
    """
    if declared > limit:
        raise too_large(declared)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise too_large(size)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_body(request: Request, operation: str) -> bytes:
    """The request body, refusing more than the operation takes (``api.limits``).

    Raises:
        errors.EntityTooLarge: the body is over the limit.
    """
    limit = control_limit(operation)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit.limit_bytes:
        raise limit.too_large(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit.limit_bytes:
            raise limit.too_large(size)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, operation: str) -> Body:
    """The body as a JSON object (see ``read_body`` and ``parse_json_object``)."""
    return Body(parse_json_object(await read_body(request, operation)))


def query(request: Request, key: str) -> str | None:
    """One query-string value (the last one wins, as in AWS)."""
    values = urllib.parse.parse_qs(request.url.query, keep_blank_values=True).get(key)
    return values[-1] if values else None


def query_all(request: Request, key: str) -> list[str]:
    return urllib.parse.parse_qs(request.url.query, keep_blank_values=True).get(key, [])
