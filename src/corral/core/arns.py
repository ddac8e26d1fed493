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
    "Partition",
    "capacity_provider_name",
    "parse_function_name",
    "reconcile_qualifier",
]

_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_QUALIFIER = re.compile(r"\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9_-]{1,128}")
_FULL = re.compile(
    r"arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:(?P<region>[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d):"
    r"(?P<account>\d{12}):function:(?P<rest>.+)"
)
_PARTIAL = re.compile(r"(?P<account>\d{12}):function:(?P<rest>.+)")
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
    value: str, partition: Partition, *, allow_qualifier: bool = True
) -> tuple[str, str | None]:
    """Split a ``FunctionName`` parameter into ``(name, qualifier)``.

    Raises:
        errors.InvalidRequest: the value is not a name or ARN Lambda would accept.
        errors.NotFound: the ARN names another account or region.
    """
    rest = value
    match = _FULL.fullmatch(value)
    if match is not None:
        _check_partition(value, match.group("region"), match.group("account"), partition)
        rest = match.group("rest")
    else:
        partial = _PARTIAL.fullmatch(value)
        if partial is not None:
            _check_partition(value, partition.region, partial.group("account"), partition)
            rest = partial.group("rest")
    name, separator, qualifier = rest.partition(":")
    if separator and not qualifier:
        raise errors.Validation(_name_constraint_message(value))
    if len(name) > 64 and _NAME.fullmatch(name[:64]) and rest == value:
        raise errors.InvalidRequest(
            errors.constraint_message(
                value, "functionName", "Member must have length less than or equal to 64"
            )
        )
    if not _NAME.fullmatch(name) or (qualifier and not _QUALIFIER.fullmatch(qualifier)):
        raise errors.Validation(_name_constraint_message(value))
    if qualifier and not allow_qualifier:
        raise errors.Validation(_name_constraint_message(value))
    return name, (qualifier or None)


def _check_partition(value: str, region: str, account: str, partition: Partition) -> None:
    if account != partition.account_id:
        raise errors.AccessDenied("")
    if region != partition.region:
        raise errors.NotFound(
            f"Functions from '{region}' are not reachable in this region ('{partition.region}')"
        )


def _name_constraint_message(value: str) -> str:
    shown = value if len(value) <= 256 else value[:256] + "..."
    return errors.constraint_message(
        shown,
        "functionName",
        "Member must satisfy regular expression pattern: "
        r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
        r"(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?",
    )


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


def reconcile_qualifier(from_arn: str | None, given: str | None) -> str | None:
    """The qualifier of a call: from the function's ARN or the ``Qualifier`` parameter.

    Raises:
        errors.Validation: ``given`` is not a valid qualifier.
        errors.InvalidRequest: both are given and differ.
    """
    if given is not None and not _QUALIFIER.fullmatch(given):
        raise errors.Validation(
            errors.constraint_message(
                given[:128],
                "qualifier",
                "Member must satisfy regular expression pattern: "
                r"\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+",
            )
        )
    if from_arn is not None and given is not None and from_arn != given:
        raise errors.InvalidRequest(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    return from_arn or given
