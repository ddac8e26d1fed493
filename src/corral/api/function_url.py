"""Function URLs: plain HTTP requests become invocations, as AWS serves
``https://<url-id>.lambda-url.<region>.on.aws``.

A URL is reached two ways on Corral's address: under the path ``/lambda-url/<url-id>/``
(what ``FunctionUrl`` says: works with any client, anywhere), or with a ``Host`` name that
starts with ``<url-id>.lambda-url.`` (what AWS uses: then the whole path is the function's).
The request becomes AWS's payload format 2.0 event (``url_event``); the answer maps back as
AWS maps it (``http_answer``): a ``statusCode`` object gives status, headers, cookies and
body; any other value is a 200 JSON body. A function error is 502, a throttle 429, a body
over 6 MB 413. ``AWS_IAM`` URLs need a SigV4 signature (service ``lambda``) by a key that may
invoke the function; ``NONE`` URLs are public. CORS preflights are answered from the URL's
``Cors`` configuration, and its headers are added to every answer to an allowed origin.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import time
import urllib.parse
from collections.abc import Coroutine
from typing import Any

from corral.api.gate import request_of
from corral.api.http import ClientGone, receive_body
from corral.api.services import Services
from corral.auth import sigv4
from corral.auth.policy import authorize
from corral.core import errors, models
from corral.router.resolve import resolve
from corral.router.router import InvokeRequest
from corral.runtime.invocation import InvocationResult, new_request_id

__all__ = ["FunctionUrlEndpoint", "cors_headers", "http_answer", "url_event", "url_target"]

Scope = dict[str, Any]
Headers = list[tuple[bytes, bytes]]

PATH_PREFIX = "/lambda-url/"
_HOST_MARK = ".lambda-url."
_MAX_BODY = 6 * 1024 * 1024
# What awslambda.HttpResponseStream.from writes: a JSON prelude, 8 NUL bytes, the body.
_PRELUDE_TYPE = "application/vnd.awslambda.http-integration-response"
_PRELUDE_END = b"\0" * 8
# Request bodies of these types reach the function as text; any other is base64.
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-amz-json",
    "application/ld+json",
    "application/graphql",
    "application/yaml",
)


def url_target(scope: Scope) -> tuple[str, str] | None:
    """``(url_id, raw_path)`` when a request is for a function URL, else None."""
    if scope.get("type") != "http":
        return None
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    path = raw.decode("latin-1")
    if path.startswith(PATH_PREFIX):
        url_id, _, rest = path[len(PATH_PREFIX) :].partition("/")
        return url_id, "/" + rest
    for key, value in scope["headers"]:
        if key == b"host":
            host = value.decode("latin-1")
            if _HOST_MARK in host:
                return host.split(".", 1)[0], path
            break
    return None


def url_event(
    scope: Scope,
    config: models.FunctionUrlConfig,
    raw_path: str,
    body: bytes,
    request_id: str,
    *,
    account_id: str,
    region: str,
    caller: dict[str, Any] | None,
    now_s: float,
) -> dict[str, Any]:
    """AWS's payload format 2.0 for a function URL request."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in scope["headers"]:
        name, text = key.decode("latin-1").lower(), value.decode("latin-1")
        if name == "cookie":
            # Split into ``cookies`` and kept in ``headers`` too, as AWS sends them.
            cookies.extend(c.strip() for c in text.split(";") if c.strip())
        elif name == "authorization":
            continue  # a signed request's signature does not reach the function
        headers[name] = f"{headers[name]},{text}" if name in headers else text
    raw_query = scope.get("query_string", b"").decode("latin-1")
    params: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    domain = headers.get("host", "").split(":", 1)[0] or f"{config.url_id}.lambda-url.{region}"
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now_s))
    client = scope.get("client") or ("", 0)
    context: dict[str, Any] = {
        "accountId": "anonymous" if caller is None else account_id,
        "apiId": config.url_id,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": scope["method"],
            "path": raw_path,
            "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
            "sourceIp": client[0],
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": stamp,
        "timeEpoch": int(now_s * 1000),
    }
    if caller is not None:
        context["authorizer"] = {"iam": caller}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
    }
    if cookies:
        event["cookies"] = cookies
    if params:
        event["queryStringParameters"] = params
    event["requestContext"] = context
    if body:
        text = _is_text(headers.get("content-type", ""))
        event["body"] = body.decode("utf-8") if text else base64.b64encode(body).decode()
        event["isBase64Encoded"] = not text
    else:
        event["isBase64Encoded"] = False
    return event


def _is_text(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return bool(kind) and (kind.startswith(_TEXT_TYPES) or kind.endswith(("+json", "+xml")))


def http_answer(payload: bytes) -> tuple[int, Headers, bytes]:
    """Status, headers and body for a function's answer, as function URLs map it.

    Raises:
        ValueError: the answer is a ``statusCode`` object that is not well formed.
    """
    try:
        value = json.loads(payload) if payload.strip() else None
    except ValueError:
        value = None
    if not isinstance(value, dict) or "statusCode" not in value:
        # As AWS sends it: a string as its text, any other JSON re-serialized compactly.
        if isinstance(value, str):
            text = value.encode()
        elif value is None and payload.strip() not in (b"null", b""):
            text = payload  # not JSON at all: as the function wrote it
        else:
            text = json.dumps(value, separators=(",", ":")).encode() if payload.strip() else b""
        return 200, [(b"content-type", b"application/json")], text
    status = value["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)  # AWS takes "418" too
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"statusCode must be an HTTP status, not {status!r}")
    headers: Headers = []
    given = value.get("headers") or {}
    if not isinstance(given, dict):
        raise ValueError("headers must be an object")
    for name, text in given.items():
        headers.append((str(name).lower().encode("latin-1"), str(text).encode("latin-1")))
    for cookie in value.get("cookies") or []:
        headers.append((b"set-cookie", str(cookie).encode("latin-1")))
    body = value.get("body")
    if body is None:
        data = b""
    elif value.get("isBase64Encoded"):
        data = base64.b64decode(str(body))
    else:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
    if not any(name == b"content-type" for name, _ in headers) and data:
        headers.append((b"content-type", b"application/json"))
    return status, headers, data


def cors_headers(cors: Any, origin: str | None, *, preflight: bool) -> Headers:
    """The CORS headers for a request from ``origin`` (none if it is not allowed)."""
    if not cors or origin is None:
        return []
    origins = cors.get("AllowOrigins") or []
    if "*" in origins:
        allowed = "*" if not cors.get("AllowCredentials") else origin
    elif origin in origins:
        allowed = origin
    else:
        return []
    found: Headers = [(b"access-control-allow-origin", allowed.encode("latin-1"))]
    if allowed != "*":
        found.append((b"vary", b"Origin"))
    if cors.get("AllowCredentials"):
        found.append((b"access-control-allow-credentials", b"true"))
    if preflight:
        if cors.get("AllowMethods"):
            found.append((b"access-control-allow-methods", ",".join(cors["AllowMethods"]).encode()))
        if cors.get("AllowHeaders"):
            found.append((b"access-control-allow-headers", ",".join(cors["AllowHeaders"]).encode()))
        if cors.get("MaxAge") is not None:
            found.append((b"access-control-max-age", str(cors["MaxAge"]).encode()))
    elif cors.get("ExposeHeaders"):
        found.append((b"access-control-expose-headers", ",".join(cors["ExposeHeaders"]).encode()))
    return found


def _message(status: int, text: str | None) -> tuple[int, Headers, bytes]:
    headers = [(b"content-type", b"application/json")]
    if status == 403:
        headers.append((b"x-amzn-errortype", b"AccessDeniedException"))
    return status, headers, json.dumps({"Message": text}).encode()


_FORBIDDEN = (
    "Forbidden. For troubleshooting Function URL authorization issues, see: "
    "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"
)
# What AWS answers for a function error through a URL (a plain body).
_FUNCTION_ERROR = (502, [(b"content-type", b"text/plain")], b"Internal Server Error")


class FunctionUrlEndpoint:
    """Serves every function URL."""

    def __init__(self, services: Services) -> None:
        self._svc = services

    async def __call__(
        self, scope: Scope, receive: Any, send: Any, target: tuple[str, str]
    ) -> None:
        request_id = new_request_id()
        url_id, raw_path = target
        config = self._svc.catalog.url_by_id(url_id)
        origin = _origin(scope)
        preflight = (
            scope["method"] == "OPTIONS"
            and origin is not None
            and any(k == b"access-control-request-method" for k, _ in scope["headers"])
        )
        if config is None:
            status, headers, body = _message(403, None)  # AWS: an unknown URL id is a 403
        elif preflight and config.cors:
            # Answered from the configuration; the function never sees a preflight.
            status, headers, body = 200, cors_headers(config.cors, origin, preflight=True), b""
        else:
            try:
                answer = await self._serve(scope, receive, send, config, raw_path, request_id)
            except ClientGone:
                return
            if answer is None:
                return  # streamed
            status, headers, body = answer
            headers = _with_cors(headers, config, origin)
        headers.append((b"x-amzn-requestid", request_id.encode()))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _serve(
        self,
        scope: Scope,
        receive: Any,
        send: Any,
        config: models.FunctionUrlConfig,
        raw_path: str,
        request_id: str,
    ) -> tuple[int, Headers, bytes] | None:
        """The answer, or None when it was streamed (``RESPONSE_STREAM``)."""
        svc = self._svc
        declared = next(
            (int(v) for k, v in scope["headers"] if k == b"content-length" and v.isdigit()), -1
        )
        try:
            body = await receive_body(receive, declared, _MAX_BODY, _too_large)
        except errors.InvalidRequest:
            return _message(413, "Request must be smaller than 6291456 bytes for the function URL.")
        caller = None
        if config.auth_type == "AWS_IAM":
            try:
                caller = self._caller(scope, body, config)
            except errors.CorralError:
                return _message(403, _FORBIDDEN)
        event = url_event(
            scope,
            config,
            raw_path,
            body,
            request_id,
            account_id=svc.partition.account_id,
            region=svc.partition.region,
            caller=caller,
            now_s=time.time(),
        )
        qualifier = None if config.qualifier == models.LATEST else config.qualifier
        streamed = _Streamed(send, request_id, _with_cors([], config, _origin(scope)))
        try:
            resolved = resolve(svc.catalog, svc.partition, config.function_name, qualifier)
            request = InvokeRequest(
                version=resolved.version,
                invoked_arn=resolved.invoked_arn,
                payload=json.dumps(event).encode(),
                request_id=request_id,
            )
            if config.invoke_mode == "RESPONSE_STREAM":
                result = await streamed.run(svc.router.invoke(streamed.sink(request)))
            else:
                result = await svc.router.invoke(request)
        except errors.Throttled:
            return streamed.failed(_message(429, "Rate Exceeded."))
        except errors.NotFound:
            return streamed.failed(
                _message(404, "The function of this URL does not exist any more.")
            )
        except errors.CorralError as exc:
            return streamed.failed(_message(503, f"Service Unavailable: {exc.message}"))
        if streamed.started:
            await streamed.end()
            return None
        if result.is_error:
            return _FUNCTION_ERROR[0], list(_FUNCTION_ERROR[1]), _FUNCTION_ERROR[2]
        try:
            return http_answer(result.payload)
        except (ValueError, TypeError):
            return _FUNCTION_ERROR[0], list(_FUNCTION_ERROR[1]), _FUNCTION_ERROR[2]

    def _caller(
        self, scope: Scope, body: bytes, config: models.FunctionUrlConfig
    ) -> dict[str, Any]:
        """The signer of an ``AWS_IAM`` request, if the signature holds and the key may
        invoke the function.

        Raises:
            errors.CorralError: unsigned, a bad signature, an unknown key, or not allowed.
        """
        svc = self._svc
        request = request_of(scope)
        claim = sigv4.parse(request)
        sigv4.check_claim(claim, time.time(), svc.settings.allowed_signing_regions)
        key = svc.keys.get(claim.access_key_id)
        if key is None:
            raise errors.Unauthenticated("UnrecognizedClientException", "unknown key")
        sigv4.verify(request, claim, key.secret, hashlib.sha256(body).hexdigest())
        name = config.function_name
        authorize(
            key,
            "InvokeFunctionUrl",
            name,
            svc.partition.function_arn(name),
            svc.partition.account_id,
        )
        user = f"arn:aws:iam::{svc.partition.account_id}:user/{key.name}"
        return {
            "accessKey": key.access_key_id,
            "accountId": svc.partition.account_id,
            "callerId": key.access_key_id,
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": user,
            "userId": key.access_key_id,
        }


class _Streamed:
    """A ``RESPONSE_STREAM`` answer: the function's chunks go out as it writes them.

    A stream that starts with ``awslambda.HttpResponseStream.from`` (content type
    ``application/vnd.awslambda.http-integration-response``) carries a JSON prelude
    (statusCode, headers, cookies) and 8 NUL bytes before the body; any other is a 200 with
    the stream's content type. Once the first byte is out, an error can only end the stream.
    """

    def __init__(self, send: Any, request_id: str, extra: Headers) -> None:
        self._send = send
        self._request_id = request_id
        self._extra = extra
        self._chunks: asyncio.Queue[tuple[bytes, str] | None] = asyncio.Queue()
        self._prelude = b""
        self.started = False
        self._gone = False

    def sink(self, request: InvokeRequest) -> InvokeRequest:
        return dataclasses.replace(
            request, on_chunk=lambda chunk, kind: self._chunks.put_nowait((chunk, kind))
        )

    async def run(self, invoking: Coroutine[Any, Any, InvocationResult]) -> InvocationResult:
        task = asyncio.ensure_future(invoking)
        task.add_done_callback(lambda _: self._chunks.put_nowait(None))
        try:
            while (item := await self._chunks.get()) is not None:
                await self._chunk(*item)
            return task.result()
        finally:
            if not task.done():
                task.cancel()

    async def _chunk(self, chunk: bytes, kind: str) -> None:
        if self.started:
            await self._body(chunk)
            return
        if kind == _PRELUDE_TYPE:
            self._prelude += chunk
            end = self._prelude.find(_PRELUDE_END)
            if end < 0:
                return
            try:
                meta = json.loads(self._prelude[:end])
                status, headers = _prelude_answer(meta)
            except (ValueError, TypeError):
                status, headers = 502, []
            rest = self._prelude[end + len(_PRELUDE_END) :]
        else:
            status, headers, rest = 200, [(b"content-type", kind.encode("latin-1"))], chunk
        self.started = True
        await self._start(status, headers)
        if rest:
            await self._body(rest)

    async def _start(self, status: int, headers: Headers) -> None:
        headers = headers + self._extra
        headers.append((b"x-amzn-requestid", self._request_id.encode()))
        try:
            await self._send({"type": "http.response.start", "status": status, "headers": headers})
        except OSError:
            self._gone = True

    async def _body(self, chunk: bytes) -> None:
        if self._gone:
            return
        try:
            await self._send({"type": "http.response.body", "body": chunk, "more_body": True})
        except OSError:
            self._gone = True  # the function runs on; the rest of its answer is dropped

    async def end(self) -> None:
        if not self._gone:
            with contextlib.suppress(OSError):
                await self._send({"type": "http.response.body", "body": b""})

    def failed(self, answer: tuple[int, Headers, bytes]) -> tuple[int, Headers, bytes] | None:
        """The error answer, unless the stream had started (then it just ends)."""
        return None if self.started else answer


def _prelude_answer(meta: Any) -> tuple[int, Headers]:
    if not isinstance(meta, dict):
        raise ValueError("the prelude is not an object")
    status, headers, _ = http_answer(json.dumps({**meta, "body": None}).encode())
    return status, headers


def _origin(scope: Scope) -> str | None:
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == b"origin"), None)


def _with_cors(headers: Headers, config: models.FunctionUrlConfig, origin: str | None) -> Headers:
    """``headers`` plus the URL's CORS headers. As on AWS, the function's own CORS headers
    stay on a normal request (both reach the browser); only a preflight is the config's alone.
    """
    if not config.cors:
        return headers
    return headers + cors_headers(config.cors, origin, preflight=False)


def _too_large(size: int) -> errors.InvalidRequest:
    return errors.RequestTooLarge(f"{size} bytes")
