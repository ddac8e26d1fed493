"""The gate in front of every API call: who signed it (SigV4), and may that key do it.

Order: the signature's form and scope, the key, the time window; then the operation (from
botocore's model) against the key's role, and the body's declared size against what that
operation takes (``api.limits``), both from the headers alone; then the body, read up to
that size (a body sent without a length is cut off there); then the signature itself. So no
request makes the server buffer more than its operation allows, and a key that may only
invoke cannot make it buffer a 70 MB CreateFunction body to be refused afterwards. (Knowing
a key's id, not its secret, one can therefore learn which operations it may call: the id
alone grants nothing.) A refused request never reaches a route; an accepted one reaches it
with its body replayed as it came.

``GET /metrics`` also takes HTTP Basic authentication (access key id and secret), which
Prometheus can send; it reveals nothing a signature would not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Any

from corral.api.http import ClientGone, error_response, receive_body
from corral.api.lambda_errors import from_exception
from corral.api.limits import body_limit
from corral.auth import sigv4
from corral.auth.keyring import KeyRing
from corral.auth.operations import Operation, operation_of
from corral.auth.policy import ApiKey, Role, authorize
from corral.core import errors
from corral.core.arns import Partition, parse_function_name
from corral.core.settings import Settings

__all__ = ["KEY_SCOPE", "Gate", "request_of"]

KEY_SCOPE = "corral.key"  # the ASGI scope key holding the caller's ``ApiKey``

Scope = dict[str, Any]

_UNKNOWN_KEY = "The security token included in the request is invalid."


class Gate:
    """ASGI middleware: authenticate and authorise, then call ``app``."""

    def __init__(self, app: Any, keys: KeyRing, partition: Partition, settings: Settings) -> None:
        self._app = app
        self._keys = keys
        self._partition = partition
        self._settings = settings
        self._regions = settings.allowed_signing_regions

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if scope["method"] == "GET" and scope["path"] == "/health":
            await self._app(scope, receive, send)  # for load balancers: says only "ok"
            return
        try:
            key, body = await self._check(scope, receive)
        except errors.CorralError as exc:
            await error_response(from_exception(exc))(scope, receive, send)
            return
        except ClientGone:
            return
        scope[KEY_SCOPE] = key
        await self._app(scope, _replay(body, receive), send)

    async def _check(self, scope: Scope, receive: Any) -> tuple[ApiKey, bytes]:
        request = request_of(scope)
        basic = self._basic(request)
        if basic is not None:
            key = basic
            operation = self._authorize(key, request)
            body = await self._read(scope, receive, request, operation)
        else:
            claim = sigv4.parse(request)
            sigv4.check_claim(claim, time.time(), self._regions)
            found = self._keys.get(claim.access_key_id)
            if found is None:
                raise errors.Unauthenticated("UnrecognizedClientException", _UNKNOWN_KEY)
            key = found
            operation = self._authorize(key, request)
            body = await self._read(scope, receive, request, operation)
            sigv4.verify(request, claim, key.secret, hashlib.sha256(body).hexdigest())
        return key, body

    async def _read(
        self, scope: Scope, receive: Any, request: sigv4.Request, operation: Operation
    ) -> bytes:
        """The body, refused from its declared length, or cut off while reading, past what
        the operation takes."""
        limit = body_limit(
            self._settings, operation.name, request.header("x-amz-invocation-type") or ""
        )
        declared = request.header("content-length")
        size = int(declared) if declared is not None and declared.isdigit() else 0
        return await receive_body(receive, size, limit.limit_bytes, limit.too_large)

    def _basic(self, request: sigv4.Request) -> ApiKey | None:
        """The key of ``GET /metrics`` with Basic authentication, if that is what came."""
        authorization = request.header("authorization")
        if authorization is None or not authorization.startswith("Basic "):
            return None
        if request.method != "GET" or request.path != "/metrics":
            raise errors.Unauthenticated(
                "IncompleteSignatureException",
                "Basic authentication is accepted for GET /metrics only; sign other calls "
                "with Signature Version 4 (any AWS SDK or the AWS CLI does).",
            )
        try:
            decoded = base64.b64decode(authorization[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        key_id, _, secret = decoded.partition(":")
        key = self._keys.get(key_id)
        if key is None or not hmac.compare_digest(key.secret.encode(), secret.encode()):
            raise errors.Unauthenticated("UnrecognizedClientException", _UNKNOWN_KEY)
        return key

    def _authorize(self, key: ApiKey, request: sigv4.Request) -> Operation:
        """The operation the request calls, if the key may call it.

        Raises:
            errors.AccessDenied: the key's role does not allow it.
        """
        operation = operation_of(request.method, request.path)
        if key.role is Role.ADMIN:
            return operation  # may call everything
        name = operation.function_name
        resource = "*"
        if name is not None:
            try:
                name = parse_function_name(name, self._partition)[0]
                resource = self._partition.function_arn(name)
            except errors.CorralError:
                resource = name  # the route will refuse it; a key may still not call it
        authorize(key, operation.name, name, resource, self._partition.account_id)
        return operation


def request_of(scope: Scope) -> sigv4.Request:
    """An ASGI request as SigV4 verification sees it: path and query as on the wire."""
    headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
    path = scope.get("raw_path") or scope["path"].encode()
    return sigv4.Request(
        scope["method"],
        path.decode("latin-1"),
        scope.get("query_string", b"").decode("latin-1"),
        headers,
    )


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replayed() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: dict[str, Any] = await receive()
        return message

    return replayed
