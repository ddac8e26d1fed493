"""One module per group of Lambda operations, and the one list the app serves.

Belongs here: route modules (each with a ``ROUTES`` list), and ``MODULES``/``ALL``, which
``api.app`` mounts and ``scripts/compatibility.py`` reports on. Must not be here: services or
business rules shared across groups (``api.publishing``, ``api.function_spec``).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute

from corral.api.routes import (
    aliases,
    capacity_providers,
    concurrency,
    corral,
    cost,
    event_invoke,
    events,
    function_urls,
    functions,
    keys,
    logs,
    metrics,
    scaling,
    stacks,
    tags,
    versions,
)

__all__ = ["ALL", "MODULES"]

MODULES: dict[str, Sequence[BaseRoute]] = {
    "corral": corral.ROUTES,
    "cost": cost.ROUTES,
    "keys": keys.ROUTES,
    "logs": logs.ROUTES,
    "metrics": metrics.ROUTES,
    "functions": functions.ROUTES,
    "versions": versions.ROUTES,
    "aliases": aliases.ROUTES,
    "capacity_providers": capacity_providers.ROUTES,
    "tags": tags.ROUTES,
    "concurrency": concurrency.ROUTES,
    "scaling": scaling.ROUTES,
    "event_invoke": event_invoke.ROUTES,
    "events": events.ROUTES,
    "function_urls": function_urls.ROUTES,
    "stacks": stacks.ROUTES,
}

ALL: list[BaseRoute] = [route for routes in MODULES.values() for route in routes]
