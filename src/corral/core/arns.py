"""ARNs and names: build them, and parse what callers pass as ``FunctionName``.

Lambda accepts a function as a name (``orders``), a partial ARN
(``123456789012:function:orders``) or a full ARN, each optionally qualified
(``orders:3``, ``...:function:orders:live``). These helpers are pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corral.core import errors

__all__ = [
    "GET_NAME_PATTERN",
    "NAME_PATTERN",
    "QUALIFIER_PATTERN",
    "Partition",
    "capacity_provider_name",
    "parse_function_name",
]

# The patterns AWS's servers print in their messages (recorded; not quite botocore's, which
# lacks ``(eusc-)?``): one for the operations that take a qualified name (GetFunction,
# DeleteFunction, Invoke: botocore's ``NamespacedFunctionName``), one for the rest
# (CreateFunction and every ``FunctionName``), one for ``Qualifier``.
GET_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
)
NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
QUALIFIER_PATTERN = r"\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+"
_MAX_QUALIFIER = 128
_MAX_CREATE_VALUE = 140
_MAX_NAME = 64
# The same patterns with the parts named.
_PARTS = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?(?P<region>(eusc-)?[a-z]{{2}}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{{1}}:)?"
    r"(?P<account>\d{{12}}:)?(function:)?(?P<name>{name})(:(?P<qualifier>{qualifier}))?"
)
_GET_NAME = re.compile(
    _PARTS.format(name=r"[a-zA-Z0-9-_\.]+", qualifier=r"\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+")
)
_NAME = re.compile(_PARTS.format(name=r"[a-zA-Z0-9-_]+", qualifier=r"\$LATEST|[a-zA-Z0-9-_]+"))
_QUALIFIER = re.compile(QUALIFIER_PATTERN)
_PROVIDER_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d):"
    r"(?P<account>\d{12}):capacity-provider:(?P<name>[a-zA-Z0-9_-]{1,140})"
)
_PROVIDER_NAME = re.compile(r"[a-zA-Z0-9_-]{1,140}")


@dataclass(frozen=True)
class Partition:
    """The account and region Corral answers for; builds ARNs in them."""

    region: str
    account_id: str

    def function_arn(self, name: str, qualifier: str | None = None) -> str:
        base = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"
        return base if qualifier is None else f"{base}:{qualifier}"

    def capacity_provider_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:capacity-provider:{name}"

    def role_placeholder(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role/corral-function"


def parse_function_name(
    value: str,
    partition: Partition,
    *,
    allow_qualifier: bool = True,
    creating: bool = False,
    qualifier: str | None = None,
) -> tuple[str, str | None]:
    """Split a ``FunctionName`` parameter into ``(name, qualifier)``, checked as AWS checks.

    ``allow_qualifier`` is true for the operations whose name may carry a qualifier
    (GetFunction, DeleteFunction, Invoke: AWS's wider pattern, where a long name is simply
    not found); ``creating`` for CreateFunction (names of at most 64 characters, ARNs of at
    most 140). ``qualifier`` is the ``Qualifier`` parameter, checked with the name (AWS
    reports both in one message) and reconciled with a qualifier inside the name.

    Raises:
        errors.Validation: a malformed name or qualifier (every problem in one message).
        errors.InvalidRequest: a name too long to create, or two different qualifiers.
        errors.AccessDenied: the ARN names another account.
        errors.NotFound: the ARN names another region.
    """
    problems: list[str] = []
    if qualifier is not None:
        if len(qualifier) > _MAX_QUALIFIER:
            problems.append(
                errors.constraint_text(
                    qualifier, "qualifier", "Member must have length less than or equal to 128"
                )
            )
        elif not _QUALIFIER.fullmatch(qualifier):
            problems.append(
                errors.constraint_text(
                    qualifier,
                    "qualifier",
                    f"Member must satisfy regular expression pattern: {QUALIFIER_PATTERN}",
                )
            )
    wide = allow_qualifier and not creating
    match = (_GET_NAME if wide else _NAME).fullmatch(value)
    if creating and len(value) > _MAX_CREATE_VALUE:
        problems.append(
            errors.constraint_text(
                _shown(value), "functionName", "Member must have length less than or equal to 140"
            )
        )
    if match is None or (match.group("qualifier") and not allow_qualifier):
        problems.append(
            errors.constraint_text(
                _shown(value),
                "functionName",
                "Member must satisfy regular expression pattern: "
                + (GET_NAME_PATTERN if wide else NAME_PATTERN),
            )
        )
    if problems:
        raise errors.Validation(errors.validation_message(problems))
    assert match is not None
    account, region = match.group("account"), match.group("region")
    if account is not None and account[:-1] != partition.account_id:
        raise errors.AccessDenied("")
    if region is not None and region[:-1] != partition.region:
        raise errors.NotFound(
            f"Functions from '{region[:-1]}' are not reachable in this region "
            f"('{partition.region}')"
        )
    name, from_arn = match.group("name"), match.group("qualifier")
    if creating and len(name) > _MAX_NAME and name == value:
        raise errors.InvalidRequest(
            errors.constraint_message(
                value, "functionName", "Member must have length less than or equal to 64"
            )
        )
    if from_arn is not None and qualifier is not None and from_arn != qualifier:
        raise errors.InvalidRequest(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    return name, from_arn or qualifier


def _shown(value: str) -> str:
    return value if len(value) <= 256 else value[:256] + "..."


def capacity_provider_name(value: str, partition: Partition) -> str:
    """The name in a ``CapacityProviderName`` parameter (a name or an ARN).

    Raises:
        errors.InvalidRequest: neither a valid name nor a capacity-provider ARN.
        errors.NotFound: the ARN names another account or region.
    """
    match = _PROVIDER_ARN.fullmatch(value)
    if match is not None:
        if match.group("account") != partition.account_id or (
            match.group("region") != partition.region
        ):
            raise errors.NotFound(f"Capacity provider not found: {value}")
        return match.group("name")
    if _PROVIDER_NAME.fullmatch(value):
        return value
    raise errors.Validation(
        errors.constraint_message(
            value[:256],
            "capacityProviderName",
            "Member must satisfy regular expression pattern: "
            r"(arn:aws[a-zA-Z-]*:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:"
            r"\d{12}:capacity-provider:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+",
        )
    )
