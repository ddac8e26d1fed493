"""Helpers shared by the route modules: services, path parameters, lookups, pagination."""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from starlette.requests import Request

from corral.api.http import query
from corral.api.services import Services
from corral.core import errors, models
from corral.core.arns import parse_function_name

__all__ = [
    "check_revision",
    "function_and_qualifier",
    "latest_or_404",
    "new_revision",
    "now_s",
    "paginate",
    "services",
    "version_or_404",
]

T = TypeVar("T")


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def now_s() -> float:
    return time.time()


def new_revision() -> str:
    return str(uuid.uuid4())


def function_and_qualifier(
    request: Request, *, allow_qualifier: bool = True
) -> tuple[str, str | None]:
    """``FunctionName`` from the path and ``Qualifier`` from the query, reconciled.

    Raises:
        errors.InvalidRequest, errors.Validation: malformed or contradicting each other.
    """
    svc = services(request)
    raw = request.path_params["function_name"]
    return parse_function_name(
        raw, svc.partition, allow_qualifier=allow_qualifier, qualifier=query(request, "Qualifier")
    )


def latest_or_404(svc: Services, name: str) -> models.FunctionVersion:
    latest = svc.catalog.version(name, models.LATEST)
    if latest is None:
        raise errors.NotFound(f"Function not found: {svc.partition.function_arn(name)}")
    return latest


def version_or_404(svc: Services, name: str, qualifier: str | None) -> models.FunctionVersion:
    """The version a Get* call names; an alias stands for its version."""
    latest = latest_or_404(svc, name)
    if qualifier is None or qualifier == models.LATEST:
        return latest
    target = qualifier
    if not (qualifier.startswith("$") or qualifier.isdigit()):
        alias = svc.catalog.alias(name, qualifier)
        if alias is None:
            raise errors.NotFound(
                f"Function not found: {svc.partition.function_arn(name, qualifier)}"
            )
        target = alias.function_version
    version = svc.catalog.version(name, target)
    if version is None:
        raise errors.NotFound(f"Function not found: {svc.partition.function_arn(name, qualifier)}")
    return version


def check_revision(given: str | None, current: str) -> None:
    if given is not None and given != current:
        raise errors.PreconditionFailed(
            "The Revision Id provided does not match the latest Revision Id. Call the "
            "GetFunction/GetAlias API to retrieve the latest Revision Id"
        )


def paginate(
    items: Sequence[T],
    request: Request,
    key: Callable[[T], str],
    *,
    default_items: int = 50,
    cap: int = 10000,
) -> tuple[list[T], str | None]:
    """One page of ``items`` after the ``Marker``; returns the page and ``NextMarker``."""
    raw_max = query(request, "MaxItems")
    max_items = default_items
    if raw_max is not None:
        if not raw_max.isdigit() or not 1 <= int(raw_max) <= cap:
            raise errors.Validation(
                errors.constraint_message(
                    raw_max[:64], "maxItems", f"Member must have value between 1 and {cap}"
                )
            )
        # Lambda returns at most 50 items a page, whatever MaxItems asks.
        max_items = min(int(raw_max), default_items)
    start = 0
    marker = query(request, "Marker")
    if marker:
        try:
            after = base64.b64decode(marker.encode(), altchars=b"-_", validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise errors.InvalidRequest(f"Invalid Marker: {marker[:64]}") from exc
        keys = [key(item) for item in items]
        start = keys.index(after) if after in keys else _first_after(keys, after)
    page = list(items[start : start + max_items])
    next_marker = None
    if start + max_items < len(items):
        next_marker = base64.urlsafe_b64encode(key(items[start + max_items]).encode()).decode()
    return page, next_marker


def _first_after(keys: list[str], after: str) -> int:
    """Where a marker whose item vanished would have been (keys are sorted by the caller)."""
    for index, value in enumerate(keys):
        if value >= after:
            return index
    return len(keys)
