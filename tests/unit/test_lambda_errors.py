"""``corral.api.lambda_errors.from_exception``: Corral errors as Lambda error responses."""

from __future__ import annotations

import json

import pytest

from corral.api import lambda_errors
from corral.core import errors


@pytest.mark.parametrize(
    ("exc", "name", "status", "key", "typed"),
    [
        (errors.InvalidRequest("m"), "InvalidParameterValueException", 400, "message", True),
        (errors.InvalidContent("m"), "InvalidRequestContentException", 400, "message", True),
        (errors.RequestTooLarge("m"), "RequestTooLargeException", 413, "message", True),
        (errors.NoPublishedVersion("m"), "NoPublishedVersionException", 400, "Message", True),
        (errors.Validation("m"), "ValidationException", 400, "message", False),
        (errors.UnsupportedMediaType("m"), "UnsupportedMediaTypeException", 415, "message", True),
        (errors.NotFound("m"), "ResourceNotFoundException", 404, "Message", True),
        (errors.Conflict("m"), "ResourceConflictException", 409, "message", True),
        (errors.PreconditionFailed("m"), "PreconditionFailedException", 412, "message", True),
        (errors.AccessDenied("m"), "AccessDeniedException", 403, "Message", False),
        (
            errors.LimitExceeded("m", lambda_error="CapacityProviderLimitExceededException"),
            "CapacityProviderLimitExceededException",
            400,
            "message",
            True,
        ),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, errors.CorralError) else None,
)
def test_each_error_maps_to_its_lambda_name_status_and_body_shape(
    exc: errors.CorralError, name: str, status: int, key: str, typed: bool
) -> None:
    error = lambda_errors.from_exception(exc)
    assert (error.name, error.status) == (name, status)
    expected: dict[str, str] = {key: "m"}
    if typed:
        expected["Type"] = "User"
    assert json.loads(error.body) == expected
    assert error.headers == ()


def test_a_throttle_carries_its_reason_and_a_retry_after_header() -> None:
    exc = errors.Throttled(
        "Rate exceeded",
        cause=errors.ThrottleCause.CPU,
        reason="CapacityProviderCPUUtilizationExceeded",
        retry_after_s=5,
    )
    error = lambda_errors.from_exception(exc)
    assert (error.name, error.status) == ("TooManyRequestsException", 429)
    assert json.loads(error.body) == {
        "Type": "User",
        "message": "Rate exceeded",
        "Reason": "CapacityProviderCPUUtilizationExceeded",
    }
    assert error.headers == ((b"retry-after", b"5"),)


def test_a_default_throttle_is_a_concurrency_limit_retried_after_one_second() -> None:
    error = lambda_errors.from_exception(errors.Throttled("busy"))
    assert json.loads(error.body)["Reason"] == "ConcurrentInvocationLimitExceeded"
    assert error.headers == ((b"retry-after", b"1"),)


@pytest.mark.parametrize(
    "exc",
    [
        errors.BackendError("boom"),
        errors.EnvironmentGone("boom"),
        errors.TemporaryError("boom", delay_s=1.0),
    ],
    ids=lambda e: type(e).__name__,
)
def test_internal_errors_are_service_exceptions(exc: errors.CorralError) -> None:
    error = lambda_errors.from_exception(exc)
    assert (error.name, error.status) == ("ServiceException", 500)
    assert json.loads(error.body) == {"Type": "Service", "Message": "boom"}


def test_an_unexpected_exception_is_a_service_exception_without_details() -> None:
    error = lambda_errors.service_error(RuntimeError("secret internals"))
    assert (error.name, error.status) == ("ServiceException", 500)
    assert "secret internals" not in error.body.decode()
