"""``create_app(settings)``: the ASGI application of a Corral server.

The Invoke path is served by ``api.invoke.InvokeEndpoint`` before the Starlette router sees
the request; everything else is a Starlette route wrapped so every failure is a Lambda error
(including 404/405 for unknown paths, which botocore reports as UnknownOperation-like errors).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from corral.api import routes
from corral.api.function_url import FunctionUrlEndpoint, url_target
from corral.api.gate import Gate
from corral.api.http import error_response
from corral.api.invoke import InvokeEndpoint, is_invoke
from corral.api.lambda_errors import LambdaError
from corral.api.metrics import CorralCollector, MetricsSampler
from corral.api.services import Services
from corral.api.streaming import StreamingInvokeEndpoint, is_streaming_invoke
from corral.core.settings import Settings
from corral.core.tasks import TaskGroup

__all__ = ["CONSOLE_PREFIX", "CorralApp", "UserInterface", "create_app"]

# The web console's paths: served by the user interface (its own login), not the API's gate.
CONSOLE_PREFIX = "/console"


class UserInterface(Protocol):
    """An ASGI app served under ``CONSOLE_PREFIX`` (the web console)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None: ...

    def close(self) -> None:
        """The server stops: end long-lived answers (live streams)."""


_log = logging.getLogger("corral.api")


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(
        LambdaError(
            404,
            "UnknownOperationException",
            b'{"message": "Corral does not serve this operation (unknown path)."}',
        )
    )


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return error_response(
        LambdaError(
            405,
            "UnknownOperationException",
            b'{"message": "Corral does not serve this method on this path."}',
        )
    )


class CorralApp:
    """The ASGI app: Invoke fast path, then the Starlette routes."""

    def __init__(
        self,
        services: Services,
        ui: Callable[[Services], UserInterface] | None = None,
    ) -> None:
        self.services = services
        self._invoke = InvokeEndpoint(services)
        self._invoke_streaming = StreamingInvokeEndpoint(services)
        self._function_urls = FunctionUrlEndpoint(services)
        self._ui = None if ui is None else ui(services)

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            if not services.started:  # ``corral serve`` starts them first, to report failures
                await services.start()
            tasks = TaskGroup("app")
            if services.settings.metrics == "on":
                tasks.spawn(MetricsSampler(services).run_forever(), name="metrics-sampler")
            try:
                yield
            finally:
                if self._ui is not None:
                    self._ui.close()
                await tasks.cancel_all()
                await services.stop()

        self.starlette = Starlette(
            routes=routes.ALL,
            exception_handlers={404: _not_found, 405: _not_allowed},
            lifespan=lifespan,
        )
        # A redirect is not a Lambda answer: a path that matches no route only with (or
        # without) a trailing slash is unknown, as any other.
        self.starlette.router.redirect_slashes = False
        self.starlette.state.services = services
        self.starlette.state.prometheus = CollectorRegistry(auto_describe=False)
        self.starlette.state.prometheus.register(CorralCollector(services))

        self._entry: Any = self._dispatch
        if services.settings.auth == "sigv4":
            self._entry = Gate(self._dispatch, services.keys, services.partition, services.settings)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Function URLs have their own authentication (AuthType): not the API's gate.
        target = url_target(scope)
        if target is not None:
            await self._function_urls(scope, receive, send, target)
            return
        if self._ui is not None and scope["type"] == "http":
            path: str = scope["path"]
            if path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/"):
                await self._ui(scope, receive, send)
                return
        await self._entry(scope, receive, send)

    async def _dispatch(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if is_invoke(scope):
            await self._invoke(scope, receive, send)
        elif is_streaming_invoke(scope):
            await self._invoke_streaming(scope, receive, send)
        else:
            await self.starlette(scope, receive, send)


def create_app(
    settings: Settings, ui: Callable[[Services], UserInterface] | None = None
) -> CorralApp:
    """Build every service and the ASGI app that serves them (and ``ui``, the console)."""
    return CorralApp(Services.build(settings), ui)
