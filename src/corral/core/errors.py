"""One error hierarchy for all of Corral.

Every error a caller may see is a ``CorralError``. Children are named by what they mean to
the caller, and ``api/lambda_errors.py`` is the only place that turns them into Lambda error
responses (error name, HTTP status, message)::

    CorralError
    ├── InvalidRequest            bad input (InvalidParameterValueException by default)
    │   ├── InvalidContent         InvalidRequestContentException (payload is not JSON)
    │   ├── RequestTooLarge        RequestTooLargeException (413): an Invoke payload
    │   ├── EntityTooLarge         RequestEntityTooLargeException (413): any other body, a zip
    │   ├── NoPublishedVersion     NoPublishedVersionException
    │   ├── Validation             ValidationException (a field breaks the model's constraint)
    │   ├── UnsupportedMediaType   UnsupportedMediaTypeException (415)
    │   └── TemplateError          a template `corral deploy` cannot deploy (says where)
    ├── NotFound                  ResourceNotFoundException (404)
    ├── Conflict                  ResourceConflictException (409)
    ├── PreconditionFailed        PreconditionFailedException (412): stale RevisionId
    ├── AccessDenied              AccessDeniedException (403)
    ├── Unauthenticated           the request is not signed by a known key (403), one of
    │                             MissingAuthenticationTokenException, IncompleteSignatureException,
    │                             InvalidSignatureException, UnrecognizedClientException
    ├── Throttled                 TooManyRequestsException (429), with the cause
    ├── LimitExceeded             a quota (the Lambda name is given by the raiser)
    ├── BackendError              an instance or sandbox could not be started or reached
    │   └── SandboxError          the sandbox refused to start an execution environment
    ├── EnvironmentGone           an execution environment stopped under an invocation
    ├── TemporaryError(delay_s)   a reconcile step should be retried later
    └── PermanentError            a reconcile step cannot succeed; record and move on

``FunctionError`` is not an exception: a function that raised is a normal invocation
result (HTTP 200 with ``X-Amz-Function-Error``), see ``runtime.invocation``.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "BackendError",
    "AccessDenied",
    "Conflict",
    "CorralError",
    "EntityTooLarge",
    "EnvironmentGone",
    "InvalidContent",
    "InvalidRequest",
    "LimitExceeded",
    "NoPublishedVersion",
    "NotFound",
    "PermanentError",
    "PreconditionFailed",
    "RequestTooLarge",
    "SandboxError",
    "TemplateError",
    "TemporaryError",
    "ThrottleCause",
    "Throttled",
    "Unauthenticated",
    "UnsupportedMediaType",
    "Validation",
    "constraint_message",
    "constraint_text",
    "validation_message",
]


class CorralError(Exception):
    """The root of every error Corral raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(CorralError):
    """The caller sent something Lambda would refuse (InvalidParameterValueException)."""

    lambda_error = "InvalidParameterValueException"


class Unauthenticated(CorralError):
    """A request without a valid signature of a known key (``lambda_error`` names AWS's
    error: missing, incomplete or invalid signature, or an unknown key)."""

    def __init__(self, lambda_error: str, message: str) -> None:
        super().__init__(message)
        self.lambda_error = lambda_error


class InvalidContent(InvalidRequest):
    """The invocation payload is not valid JSON."""

    lambda_error = "InvalidRequestContentException"


class RequestTooLarge(InvalidRequest):
    """A request body is over Lambda's limit."""

    lambda_error = "RequestTooLargeException"


class EntityTooLarge(InvalidRequest):
    """A control-plane request or a function's zip is over Lambda's limit."""

    lambda_error = "RequestEntityTooLargeException"


class NoPublishedVersion(InvalidRequest):
    """A Managed Instances function was invoked before any version was published."""

    lambda_error = "NoPublishedVersionException"


class Validation(InvalidRequest):
    """A field breaks a constraint of the API model (AWS answers ValidationException)."""

    lambda_error = "ValidationException"


def constraint_text(value: object, field: str, constraint: str) -> str:
    """One broken constraint in AWS's words: ``Value 'x' at 'field' failed to ...``."""
    shown = "null" if value is None else f"'{value}'"
    return f"Value {shown} at '{field}' failed to satisfy constraint: {constraint}"


def validation_message(problems: list[str]) -> str:
    """AWS's message for broken constraints: ``N validation error(s) detected: a; b``."""
    count = len(problems)
    return f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems)


def constraint_message(value: object, field: str, constraint: str) -> str:
    """AWS's wording for one broken constraint: ``1 validation error detected: ...``."""
    return validation_message([constraint_text(value, field, constraint)])


class UnsupportedMediaType(InvalidRequest):
    """The request's content type cannot be read."""

    lambda_error = "UnsupportedMediaTypeException"


class TemplateError(InvalidRequest):
    """A SAM or CloudFormation template Corral cannot deploy; the message names the resource
    or intrinsic and says what to change."""


class NotFound(CorralError):
    """The named function, version, alias or capacity provider does not exist."""


class Conflict(CorralError):
    """The resource exists already, or is in a state that forbids the operation."""


class ThrottleCause(StrEnum):
    """Why an invocation was refused with 429 (the label of ``corral_throttles_total``)."""

    CONCURRENCY = "concurrency"
    CPU = "cpu"
    MEMORY = "memory"
    DISK = "disk"


class PreconditionFailed(CorralError):
    """The caller's RevisionId is not the current one."""


class AccessDenied(CorralError):
    """The caller may not act on this resource."""


class Throttled(CorralError):
    """No execution environment could take the invocation now (HTTP 429)."""

    def __init__(
        self,
        message: str,
        *,
        cause: ThrottleCause = ThrottleCause.CONCURRENCY,
        reason: str = "ConcurrentInvocationLimitExceeded",
        retry_after_s: int = 1,
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.reason = reason
        self.retry_after_s = retry_after_s


class LimitExceeded(CorralError):
    """A quota was reached; ``lambda_error`` names the Lambda exception to return."""

    def __init__(self, message: str, *, lambda_error: str) -> None:
        super().__init__(message)
        self.lambda_error = lambda_error


class BackendError(CorralError):
    """An instance, sandbox or execution environment could not be started or reached."""


class SandboxError(BackendError):
    """The sandbox refused to start an execution environment."""


class EnvironmentGone(CorralError):
    """An execution environment stopped while an invocation was assigned to it."""


class TemporaryError(CorralError):
    """A reconcile step failed in a way that may pass; retry after ``delay_s``."""

    def __init__(self, message: str, *, delay_s: float) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class PermanentError(CorralError):
    """A reconcile step cannot succeed as asked; record it and do not retry."""
