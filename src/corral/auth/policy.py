"""API keys and what they may do: pure rules, no I/O.

A key has a role. ``admin`` may call everything. ``invoke`` may call ``Invoke`` (and the
older ``InvokeAsync``), and only on functions whose name matches one of its patterns
(shell-style, case-sensitive: ``orders-*``); anything else is ``AccessDeniedException``,
worded as AWS words it.
"""

from __future__ import annotations

import fnmatch
import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from corral.core import errors

__all__ = [
    "ApiKey",
    "INVOKE_OPERATIONS",
    "Role",
    "authorize",
    "check_patterns",
    "new_key",
]

INVOKE_OPERATIONS = frozenset(
    {"Invoke", "InvokeAsync", "InvokeWithResponseStream", "InvokeFunctionUrl"}
)
_KEY_ID_PREFIX = "AKCR"  # "AKIA" is AWS's; Corral's keys say whose they are
_KEY_ID_ALPHABET = string.ascii_uppercase + "234567"
_PATTERN = re.compile(r"^[A-Za-z0-9_*?\[\]!:.-]{1,170}$")
_NAME = re.compile(r"^[A-Za-z0-9_.@+=,-]{1,64}$")


class Role(StrEnum):
    ADMIN = "admin"
    INVOKE = "invoke"


@dataclass(frozen=True)
class ApiKey:
    """An access key: its id, secret, role and (role ``invoke``) function-name patterns."""

    access_key_id: str
    secret: str
    role: Role
    function_patterns: tuple[str, ...]
    name: str
    created_s: float

    def public(self) -> dict[str, Any]:
        """What listing a key shows: everything but the secret."""
        return {
            "AccessKeyId": self.access_key_id,
            "Name": self.name,
            "Role": self.role.value,
            "FunctionPatterns": list(self.function_patterns),
            "CreatedAt": self.created_s,
        }


def check_patterns(role: Role, patterns: Sequence[str]) -> tuple[str, ...]:
    """The patterns a key of ``role`` keeps.

    Raises:
        errors.InvalidRequest: an ``invoke`` key without patterns, an ``admin`` key with
            some, or a pattern that could not match a function name.
    """
    if role is Role.ADMIN and patterns:
        raise errors.InvalidRequest("an admin key may call everything: it takes no patterns")
    if role is Role.INVOKE and not patterns:
        raise errors.InvalidRequest(
            "an invoke key needs at least one function-name pattern (e.g. 'orders-*', or "
            "'*' for every function)"
        )
    for pattern in patterns:
        if not _PATTERN.match(pattern):
            raise errors.InvalidRequest(
                f"{pattern[:80]!r} is not a function-name pattern: letters, digits, - _ : . "
                "and the wildcards * ? [ ] !, up to 170 characters"
            )
    return tuple(dict.fromkeys(patterns))


def new_key(role: Role, patterns: Sequence[str], name: str, now_s: float) -> ApiKey:
    """A fresh key (20-character id, 40-character secret, as AWS's).

    Raises:
        errors.InvalidRequest: see ``check_patterns``; or a name that is not 1-64 of
            letters, digits and ``_.@+=,-``.
    """
    kept = check_patterns(role, patterns)
    if not _NAME.match(name):
        raise errors.InvalidRequest(
            f"{name[:80]!r} is not a key name: 1-64 letters, digits and _.@+=,-"
        )
    key_id = _KEY_ID_PREFIX + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
    secret = secrets.token_urlsafe(30)  # 40 characters
    return ApiKey(key_id, secret, role, kept, name, now_s)


def authorize(
    key: ApiKey, operation: str, function_name: str | None, resource_arn: str, account_id: str
) -> None:
    """Whether ``key`` may call ``operation`` (on ``function_name``, if it names one).

    Raises:
        errors.AccessDenied: with AWS's wording.
    """
    if key.role is Role.ADMIN:
        return
    if operation in INVOKE_OPERATIONS and function_name is not None:
        if any(fnmatch.fnmatchcase(function_name, p) for p in key.function_patterns):
            return
        reason = (
            "because no identity-based policy allows the lambda:InvokeFunction action on it "
            f"(this key invokes only {', '.join(key.function_patterns)})"
        )
        action = "lambda:InvokeFunction"
    else:
        action = f"lambda:{operation}" if operation[:1].isupper() else f"corral:{operation}"
        reason = (
            f"because no identity-based policy allows the {action} action (this key has the "
            "invoke role; use an admin key)"
        )
    raise errors.AccessDenied(
        f"User: arn:aws:iam::{account_id}:user/{key.name} is not authorized to perform: "
        f"{action} on resource: {resource_arn} {reason}"
    )
