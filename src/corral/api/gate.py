"""The gate in front of every API call: who signed it (SigV4), and may that key do it.

Order, as AWS's front end: the signature's form and scope, the key, the time window, then
the body (read in full, up to the largest body any operation takes, only for a known key),
then the signature itself; then the operation (from botocore's model) against the key's
role. A refused request never reaches a route; an accepted one reaches it with its body
replayed as it came.

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

from corral.api.http import CONTROL_BODY_LIMIT, ClientGone, error_response, receive_body
from corral.api.lambda_errors import from_exception
from corral.auth import sigv4
from corral.auth.keyring import KeyRing
from corral.auth.operations import operation_of
from corral.auth.policy import ApiKey, Role, authorize
from corral.core import errors
from corral.core.arns import Partition, parse_function_name

__all__ = ["KEY_SCOPE", "Gate"]

KEY_SCOPE = "corral.key"  # the ASGI scope key holding the caller's ``ApiKey``

Scope = dict[str, Any]

_UNKNOWN_KEY = "The security token included in the request is invalid."


class Gate:
    """ASGI middleware: authenticate and authorise, then call ``app``."""

    def __init__(
        self, app: Any, keys: KeyRing, partition: Partition, regions: frozenset[str]
    ) -> None:
        self._app = app
        self._keys = keys
        self._partition = partition
        self._regions = regions

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
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        path = scope.get("raw_path") or scope["path"].encode()
        request = sigv4.Request(
            scope["method"],
            path.decode("latin-1"),
            scope.get("query_string", b"").decode("latin-1"),
            headers,
        )
        basic = self._basic(request)
        if basic is not None:
            key = basic
            body = await _read_all(scope, receive)
        else:
            claim = sigv4.parse(request)
            sigv4.check_claim(claim, time.time(), self._regions)
            found = self._keys.get(claim.access_key_id)
            if found is None:
                raise errors.Unauthenticated("UnrecognizedClientException", _UNKNOWN_KEY)
            key = found
            body = await _read_all(scope, receive)
            sigv4.verify(request, claim, key.secret, hashlib.sha256(body).hexdigest())
        self._authorize(key, request)
        return key, body

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

    def _authorize(self, key: ApiKey, request: sigv4.Request) -> None:
        if key.role is Role.ADMIN:
            return  # may call everything: no need to know what it calls
        operation = operation_of(request.method, request.path)
        name = operation.function_name
        resource = "*"
        if name is not None:
            try:
                name = parse_function_name(name, self._partition)[0]
                resource = self._partition.function_arn(name)
            except errors.CorralError:
                resource = name  # the route will refuse it; a key may still not call it
        authorize(key, operation.name, name, resource, self._partition.account_id)


async def _read_all(scope: Scope, receive: Any) -> bytes:
    """The whole body, up to the largest any operation takes (each route checks its own)."""
    declared = 0
    for name, value in scope["headers"]:
        if name.lower() == b"content-length" and value.isdigit():
            declared = int(value)
    return await receive_body(receive, declared, CONTROL_BODY_LIMIT, _too_large)


def _too_large(size: int) -> errors.RequestTooLarge:
    return errors.RequestTooLarge(f"Request must be smaller than {CONTROL_BODY_LIMIT} bytes")


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
