"""How large a request body each operation takes, and the error for one that is larger.

One table for the gate (which checks a declared ``Content-Length`` before it reads a byte,
and stops reading at the limit when none is declared) and for the routes (which check again
when authentication is off). The numbers are AWS's: a synchronous Invoke payload of 6 MB
(``RequestTooLargeException``), an Event payload of 1 MB, a function's code in
CreateFunction and UpdateFunctionCode up to 70,167,211 bytes of request; any other
operation 1 MiB (``RequestEntityTooLargeException``).
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.core import errors
from corral.core.settings import Settings

__all__ = [
    "CODE_BODY_LIMIT",
    "CONTROL_BODY_LIMIT",
    "BodyLimit",
    "body_limit",
    "control_limit",
    "invoke_limit",
]

# AWS: "Request must be smaller than 70167211 bytes for the CreateFunction operation".
CODE_BODY_LIMIT = 70_167_211
# Any other control-plane operation (AWS publishes no figure; a configuration is small).
CONTROL_BODY_LIMIT = 1024 * 1024
_CODE_OPERATIONS = frozenset({"CreateFunction", "UpdateFunctionCode"})


@dataclass(frozen=True)
class BodyLimit:
    """At most ``limit_bytes`` of body for ``operation``."""

    operation: str
    limit_bytes: int
    event: bool = False

    def too_large(self, size: int) -> errors.InvalidRequest:
        """The error for a body of ``size`` bytes (AWS's name and sentence for each)."""
        if self.operation == "Invoke":
            if self.event:
                return errors.RequestTooLarge(
                    f"{size} byte payload is too large for the Event invocation type "
                    f"(limit {self.limit_bytes} bytes)"
                )
            return errors.RequestTooLarge(
                f"Request must be smaller than {self.limit_bytes} bytes for the "
                "InvokeFunction operation"
            )
        return errors.EntityTooLarge(
            f"Request must be smaller than {self.limit_bytes} bytes for the {self.operation} "
            "operation"
        )


def invoke_limit(settings: Settings, invocation_type: str) -> BodyLimit:
    """The payload limit of an Invoke of this type (``X-Amz-Invocation-Type``)."""
    if invocation_type == "Event":
        return BodyLimit("Invoke", settings.max_async_payload_bytes, event=True)
    return BodyLimit("Invoke", settings.max_sync_payload_bytes)


def control_limit(operation: str) -> BodyLimit:
    """The body limit of any operation but Invoke (a Lambda operation, or Corral's own)."""
    if operation in _CODE_OPERATIONS:
        return BodyLimit(operation, CODE_BODY_LIMIT)
    return BodyLimit(operation, CONTROL_BODY_LIMIT)


def body_limit(settings: Settings, operation: str, invocation_type: str = "") -> BodyLimit:
    """The body limit of an operation (a Lambda operation's name, or Corral's own path)."""
    if operation == "Invoke":
        return invoke_limit(settings, invocation_type)
    return control_limit(operation)
