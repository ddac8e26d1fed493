"""Invoke, on a lean path: a raw ASGI handler in front of the Starlette app.

Every invocation crosses this code, so it avoids the router/request/response objects of the
framework. Semantics follow ``Invoke`` in botocore's model: RequestResponse answers 200 with
the payload (and ``X-Amz-Function-Error: Unhandled`` for a function error), Event answers
202 once the event is durably queued, DryRun answers 204; ``LogType=Tail`` returns the last
4 KB of the invocation's log in ``X-Amz-Log-Result``.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from corral.api import lambda_errors
from corral.api.http import ClientGone, receive_body
from corral.api.limits import invoke_limit
from corral.api.services import Services
from corral.core import errors
from corral.core.arns import parse_function_name
from corral.router.resolve import Resolved, resolve
from corral.router.router import InvokeRequest
from corral.runtime.invocation import TAIL_BYTES, new_request_id

__all__ = ["Call", "InvokeEndpoint", "error_answer", "is_invoke", "posts_to", "read_call"]

_PREFIX = "/2015-03-31/functions/"
_SUFFIX = "/invocations"
_MAX_CLIENT_CONTEXT = 3583
_TYPES = ("Event", "RequestResponse", "DryRun")

Scope = dict[str, Any]


def is_invoke(scope: Scope) -> bool:
    return posts_to(scope, _PREFIX, _SUFFIX)


def posts_to(scope: Scope, prefix: str, suffix: str) -> bool:
    """Whether a request is an HTTP POST to ``prefix{FunctionName}suffix``."""
    path: str = scope.get("path", "")
    return (
        scope.get("type") == "http"
        and scope.get("method") == "POST"
        and path.startswith(prefix)
        and path.endswith(suffix)
    )


class InvokeEndpoint:
    """``POST /2015-03-31/functions/{FunctionName}/invocations``."""

    def __init__(self, services: Services) -> None:
        self._svc = services

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        request_id = new_request_id()
        try:
            status, headers, body = await self._invoke(scope, receive, request_id)
        except Exception as exc:
            status, headers, body = error_answer(exc)
        headers.append((b"x-amzn-requestid", request_id.encode()))
        headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _invoke(
        self, scope: Scope, receive: Any, request_id: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        svc = self._svc
        call = await read_call(svc, scope, receive, _PREFIX, _SUFFIX, _TYPES)
        target = call.target
        executed = [(b"x-amz-executed-version", target.version.version.encode())]
        if call.invocation_type == "DryRun":
            return 204, executed, b""
        if call.invocation_type == "Event":
            # The 202's request id is the one the function sees (and its log lines carry).
            await svc.async_invoker.enqueue(
                call.name,
                call.qualifier or "",
                call.payload or b"{}",
                call.client_context,
                request_id,
            )
            return 202, [], b""
        result = await svc.router.invoke(
            InvokeRequest(
                version=target.version,
                invoked_arn=target.invoked_arn,
                payload=call.payload or b"{}",
                client_context=call.client_context,
                capture_logs=call.log_type == "Tail",
                request_id=request_id,
            )
        )
        headers = executed
        if result.is_error:
            headers.append((b"x-amz-function-error", b"Unhandled"))
        if call.log_type == "Tail":
            text = b"\n".join(result.log_lines) + b"\n"
            headers.append((b"x-amz-log-result", base64.b64encode(text[-TAIL_BYTES:])))
        return 200, headers, result.payload


@dataclass(frozen=True)
class Call:
    """An invocation request as read and checked from the wire (both Invoke operations)."""

    invocation_type: str
    log_type: str
    client_context: str
    payload: bytes
    name: str
    qualifier: str | None
    target: Resolved


async def read_call(
    svc: Services,
    scope: Scope,
    receive: Any,
    prefix: str,
    suffix: str,
    types: tuple[str, ...],
) -> Call:
    """Read an invocation's headers and payload and resolve its function.

    Raises:
        errors.CorralError: what AWS answers for a bad header, payload or name.
    """
    invocation_type = "RequestResponse"
    log_type = "None"
    client_context = ""
    declared = -1
    for key, value in scope["headers"]:
        if key == b"x-amz-invocation-type":
            invocation_type = value.decode("latin-1")
        elif key == b"x-amz-log-type":
            log_type = value.decode("latin-1")
        elif key == b"x-amz-client-context":
            client_context = _client_context(value)
        elif key == b"content-length" and value.isdigit():
            declared = int(value)
    if invocation_type not in types:
        raise _enum_error(invocation_type, "invocationType", types)
    if log_type not in ("None", "Tail"):
        raise _enum_error(log_type, "logType", ("None", "Tail"))
    limit = invoke_limit(svc.settings, invocation_type)
    try:
        payload = await receive_body(receive, declared, limit.limit_bytes, limit.too_large)
    except ClientGone:
        raise errors.InvalidContent(
            "The client disconnected before sending the whole payload"
        ) from None
    _check_json(payload)
    raw_name = scope["path"][len(prefix) : -len(suffix)]
    name, qualifier = parse_function_name(raw_name, svc.partition, qualifier=_qualifier(scope))
    target = resolve(svc.catalog, svc.partition, name, qualifier)
    return Call(invocation_type, log_type, client_context, payload, name, qualifier, target)


def error_answer(exc: Exception) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of the Lambda error an invocation ended with."""
    if isinstance(exc, errors.CorralError):
        error = lambda_errors.from_exception(exc)
        return (
            error.status,
            [(b"x-amzn-errortype", error.name.encode()), *error.headers],
            error.body,
        )
    error = lambda_errors.service_error(exc)  # a bug: answer and keep serving
    return error.status, [(b"x-amzn-errortype", error.name.encode())], error.body


def _check_json(payload: bytes) -> None:
    if not payload:
        return
    try:
        json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        detail = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise errors.InvalidContent(
            f"Could not parse request body into json: Could not parse payload into json: {detail}"
        ) from exc


def _client_context(value: bytes) -> str:
    if len(value) > _MAX_CLIENT_CONTEXT:
        raise errors.InvalidRequest(
            f"Client context must be at most {_MAX_CLIENT_CONTEXT} bytes, base64-encoded."
        )
    try:
        data = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise errors.InvalidRequest(
            "Client context must be a valid Base64-encoded JSON object."
        ) from exc
    if not isinstance(data, dict):
        raise errors.InvalidRequest("Client context must be a valid Base64-encoded JSON object.")
    return json.dumps(data, separators=(",", ":"))


def _qualifier(scope: Scope) -> str | None:
    """The ``Qualifier`` query parameter, if any."""
    raw: bytes = scope.get("query_string", b"")
    if raw.startswith(b"Qualifier=") and not any(c in raw for c in b"&%+"):
        return raw[10:].decode("latin-1")  # the common case, without parse_qs
    if raw:
        values = urllib.parse.parse_qs(raw.decode("latin-1")).get("Qualifier")
        return values[-1] if values else None
    return None


def _enum_error(value: str, field: str, allowed: tuple[str, ...]) -> errors.Validation:
    return errors.Validation(
        errors.constraint_message(
            value[:64], field, f"Member must satisfy enum value set: [{', '.join(allowed)}]"
        )
    )
