"""Turn a ``CorralError`` into the Lambda error response botocore expects.

This module is the only place that knows error names and HTTP statuses. Lambda puts the
name in ``x-amzn-ErrorType`` and the message in the body; whether the body key is
``message`` or ``Message`` follows the member name in botocore's model, and most errors
carry ``"Type": "User"``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from corral.core import errors

__all__ = ["LambdaError", "from_exception", "service_error"]

_log = logging.getLogger("corral.api")


@dataclass(frozen=True)
class LambdaError:
    """A Lambda error response: status, name, body and extra headers."""

    status: int
    name: str
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


# name -> (status, message key, has Type)
_SHAPES: dict[str, tuple[int, str, bool]] = {
    "InvalidParameterValueException": (400, "message", True),
    "ValidationException": (400, "message", False),
    "InvalidRequestContentException": (400, "message", True),
    "RequestTooLargeException": (413, "message", True),
    # Not in botocore's model; AWS's body has no Type (recorded: test_oversized_zipped_*).
    "RequestEntityTooLargeException": (413, "message", False),
    "NoPublishedVersionException": (400, "Message", True),
    "UnsupportedMediaTypeException": (415, "message", True),
    "ResourceNotFoundException": (404, "Message", True),
    "ResourceConflictException": (409, "message", True),
    "PreconditionFailedException": (412, "message", True),
    "AccessDeniedException": (403, "Message", False),
    "TooManyRequestsException": (429, "message", True),
    "CapacityProviderLimitExceededException": (400, "message", True),
    "FunctionVersionsPerCapacityProviderLimitExceededException": (400, "message", True),
    "CodeStorageExceededException": (400, "message", True),
    "ServiceException": (500, "Message", True),
    "UnrecognizedClientException": (403, "message", False),
    "MissingAuthenticationTokenException": (403, "message", False),
    "IncompleteSignatureException": (403, "message", False),
    "InvalidSignatureException": (403, "message", False),
}


def _render(name: str, message: str, **extra: str) -> LambdaError:
    status, key, typed = _SHAPES.get(name, (400, "message", True))
    body: dict[str, str] = {}
    if typed:
        body["Type"] = "User" if status < 500 else "Service"
    body[key] = message
    body.update(extra)
    return LambdaError(status, name, json.dumps(body).encode())


def from_exception(exc: errors.CorralError) -> LambdaError:
    """The Lambda error for a Corral error."""
    if isinstance(exc, errors.Throttled):
        error = _render("TooManyRequestsException", exc.message, Reason=exc.reason)
        return LambdaError(
            error.status,
            error.name,
            error.body,
            ((b"retry-after", str(exc.retry_after_s).encode()),),
        )
    if isinstance(exc, errors.InvalidRequest):
        return _render(type(exc).lambda_error, exc.message)
    if isinstance(exc, errors.LimitExceeded):
        return _render(exc.lambda_error, exc.message)
    if isinstance(exc, errors.NotFound):
        return _render("ResourceNotFoundException", exc.message)
    if isinstance(exc, errors.Conflict):
        return _render("ResourceConflictException", exc.message)
    if isinstance(exc, errors.PreconditionFailed):
        return _render("PreconditionFailedException", exc.message)
    if isinstance(exc, errors.AccessDenied):
        return _render("AccessDeniedException", exc.message)
    if isinstance(exc, errors.Unauthenticated):
        return _render(exc.lambda_error, exc.message)
    _log.error("service error: %s", exc.message)
    return _render("ServiceException", exc.message)


def service_error(exc: BaseException) -> LambdaError:
    """A bug: log it with its traceback, answer ServiceException."""
    _log.error("unexpected error while serving a request", exc_info=exc)
    return _render(
        "ServiceException",
        "Corral hit an internal error; the details are in the server log.",
    )
