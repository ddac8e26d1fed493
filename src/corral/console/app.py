"""The web console, served by ``corral serve`` at ``/console/`` (docs/console.md).

Server-rendered pages (Jinja2) with two small vendored libraries (htmx for forms, uPlot for
charts) and one script of ours; live parts update from one Server-Sent Events stream per
page (``/console/events?topic=...``), which sends once a second only what that page shows.

Who may look: a login with a Corral key (``sessions``); an ``invoke`` key sees only the
functions its patterns allow and can change nothing but invoke them. With ``--auth none``
(loopback only) the console opens without a login. State-changing requests carry the
session's CSRF token, and a request from another origin is refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from corral.api.routes.cost import cost_estimate, cost_report
from corral.api.routes.logs import parse_time_ms
from corral.api.services import Services
from corral.console import views
from corral.console.sessions import COOKIE, SESSION_TTL_S, Sessions
from corral.core import errors
from corral.core.arns import parse_function_name
from corral.router.resolve import resolve
from corral.router.router import InvokeRequest
from corral.runtime.invocation import new_request_id
from corral.telemetry.logdb import LogQuery

__all__ = ["Console"]

_log = logging.getLogger("corral.console")
_HERE = Path(__file__).parent
# A live page's stream ends after this long; the browser reconnects at once (EventSource).
_STREAM_S = 300.0
_TICK_S = 1.0
# The live function page gets the duration percentiles every this many ticks.
_DURATIONS_EVERY = 5
_LOG_LIMIT = 500

Page = Callable[[Request, views.Viewer], Awaitable[Response]]


class Console:
    """The console's ASGI app (mounted at ``/console``)."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc
        self.sessions = Sessions()
        # Without authentication there is no session: one token for the server's life.
        self._open_csrf = secrets.token_urlsafe(32)
        self._closing = asyncio.Event()
        self._templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self._templates.filters.update(pct=_pct, number=_number, when=_when)
        console = [
            Route("/", self._page(self._overview)),
            Route("/login", self._login_form, methods=["GET"]),
            Route("/login", self._login, methods=["POST"]),
            Route("/logout", self._page(self._logout, post=True), methods=["POST"]),
            Route("/functions", self._page(self._functions)),
            Route("/functions/{name}", self._page(self._function)),
            Route(
                "/functions/{name}/invoke",
                self._page(self._invoke, post=True),
                methods=["POST"],
            ),
            Route("/capacity-providers/{name}", self._page(self._provider, admin=True)),
            Route("/logs", self._page(self._logs)),
            Route("/requests/{request_id}", self._page(self._request)),
            Route("/cost", self._page(self._cost)),
            Route("/cost/estimate", self._page(self._cost_estimate)),
            Route("/cost/report", self._page(self._cost_report)),
            Route("/events", self._page(self._events)),
            Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
        ]
        self.app = Starlette(
            routes=[
                Route("/console", lambda request: RedirectResponse("/console/", 308)),
                Mount("/console", routes=console),
            ]
        )
        self.app.router.redirect_slashes = False
        self.app.state.services = svc  # for the API routes the console reuses

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def close(self) -> None:
        """End the live streams (the server stops)."""
        self._closing.set()

    # --- who looks ----------------------------------------------------------------------------
    def _viewer(self, request: Request) -> views.Viewer | None:
        if self._svc.settings.auth == "none":
            return views.Viewer(None, self._open_csrf)
        session = self.sessions.get(request.cookies.get(COOKIE), time.time())
        if session is None:
            return None
        current = self._svc.keys.get(session.key.access_key_id)
        if current is None or current.secret != session.key.secret:
            self.sessions.close(session.token)  # the key was deleted
            return None
        return views.Viewer(current, session.csrf)

    def _page(
        self, func: Page, *, admin: bool = False, post: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            viewer = self._viewer(request)
            if viewer is None:
                if post:
                    return self._render("error.html", None, status=401, message="Log in first.")
                target = urllib.parse.quote(request.url.path + _query(request))
                return RedirectResponse(f"/console/login?next={target}", status_code=303)
            if admin and not viewer.admin:
                return self._render(
                    "error.html", viewer, status=403, message="This page needs an admin key."
                )
            if post and not await self._csrf_ok(request, viewer):
                return self._render(
                    "error.html",
                    viewer,
                    status=403,
                    message="This form is stale or came from another site: reload the page.",
                )
            try:
                return await func(request, viewer)
            except errors.CorralError as exc:
                status = 404 if isinstance(exc, errors.NotFound) else 400
                return self._render("error.html", viewer, status=status, message=exc.message)
            except Exception:  # a bug: said in the server's log, and to the user plainly
                _log.exception("console page %s failed", request.url.path)
                return self._render(
                    "error.html",
                    viewer,
                    status=500,
                    message="This page failed (a bug in Corral; the server's log says more).",
                )

        return endpoint

    async def _csrf_ok(self, request: Request, viewer: views.Viewer) -> bool:
        origin = request.headers.get("origin")
        if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
            return False
        given = request.headers.get("x-csrf-token")
        if given is None:
            form = await request.form()
            value = form.get("csrf")
            given = value if isinstance(value, str) else None
        return given is not None and secrets.compare_digest(given, viewer.csrf)

    def _render(
        self, template: str, viewer: views.Viewer | None, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        context.setdefault("page", "")
        html = self._templates.get_template(template).render(viewer=viewer, **context)
        return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)

    # --- login --------------------------------------------------------------------------------
    async def _login_form(self, request: Request) -> Response:
        if self._viewer(request) is not None:
            return RedirectResponse(_next(request.query_params.get("next")), status_code=303)
        return self._render(
            "login.html", None, error="", next=_next(request.query_params.get("next"))
        )

    async def _login(self, request: Request) -> Response:
        form = await request.form()
        key_id = str(form.get("access_key_id", "")).strip()
        secret = str(form.get("secret_access_key", ""))
        target = _next(str(form.get("next", "")))
        key = self._svc.keys.get(key_id) if key_id else None
        if key is None or not secrets.compare_digest(key.secret.encode(), secret.encode()):
            return self._render(
                "login.html",
                None,
                status=401,
                error="Wrong access key id or secret. `corral keys list` shows the keys; the "
                "admin key is in the data directory's credentials file.",
                next=target,
            )
        session = self.sessions.open(key, time.time())
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            session.token,
            max_age=int(SESSION_TTL_S),
            path="/console",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def _logout(self, request: Request, viewer: views.Viewer) -> Response:
        self.sessions.close(request.cookies.get(COOKIE))
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    # --- pages --------------------------------------------------------------------------------
    async def _overview(self, request: Request, viewer: views.Viewer) -> Response:
        return self._render(
            "overview.html", viewer, page="overview", **views.overview(self._svc, viewer)
        )

    async def _functions(self, request: Request, viewer: views.Viewer) -> Response:
        rows = views.function_rows(self._svc, viewer)
        return self._render("functions.html", viewer, page="functions", functions=rows)

    def _visible(self, viewer: views.Viewer, name: str) -> None:
        if not viewer.can_see(name):
            raise errors.NotFound(f"Function not found: {name} (or this key may not see it)")

    async def _function(self, request: Request, viewer: views.Viewer) -> Response:
        name = request.path_params["name"]
        self._visible(viewer, name)
        data = views.function_page(self._svc, name)
        if data is None:
            raise errors.NotFound(f"Function not found: {name}")
        history = views.monitor_history(self._svc, name)
        return self._render(
            "function.html",
            viewer,
            page="functions",
            history=json.dumps(history),
            durations=await views.durations(self._svc, name),
            **data,
        )

    async def _invoke(self, request: Request, viewer: views.Viewer) -> Response:
        name = request.path_params["name"]
        self._visible(viewer, name)
        form = await request.form()
        payload = str(form.get("payload", "") or "{}").encode()
        qualifier = str(form.get("qualifier", "")) or None
        try:
            json.loads(payload)
        except ValueError:
            return self._render("invoke_result.html", viewer, error="The payload is not JSON.")
        svc = self._svc
        parsed, qualifier = parse_function_name(name, svc.partition, qualifier=qualifier)
        target = resolve(svc.catalog, svc.partition, parsed, qualifier)
        request_id = new_request_id()
        started = time.monotonic()
        try:
            result = await svc.router.invoke(
                InvokeRequest(
                    version=target.version,
                    invoked_arn=target.invoked_arn,
                    payload=payload,
                    capture_logs=True,
                    request_id=request_id,
                )
            )
        except errors.Throttled as exc:
            return self._render(
                "invoke_result.html", viewer, error=f"429 TooManyRequestsException: {exc.message}"
            )
        return self._render(
            "invoke_result.html",
            viewer,
            error="",
            request_id=request_id,
            version=target.version.version,
            function_error=result.is_error,
            payload=result.payload.decode("utf-8", "replace"),
            logs=b"\n".join(result.log_lines).decode("utf-8", "replace"),
            took_ms=(time.monotonic() - started) * 1000,
        )

    async def _provider(self, request: Request, viewer: views.Viewer) -> Response:
        name = request.path_params["name"]
        provider = views.provider_live(self._svc, name)
        if provider is None:
            raise errors.NotFound(f"Capacity provider not found: {name}")
        return self._render(
            "provider.html",
            viewer,
            page="overview",
            provider=provider,
            live=json.dumps(provider),
            history=json.dumps(views.provider_history(self._svc, name)),
        )

    async def _logs(self, request: Request, viewer: views.Viewer) -> Response:
        params = request.query_params
        function = params.get("function", "").strip()
        request_id = params.get("requestId", "").strip()
        text = params.get("text", "")
        since = params.get("since", "1h")
        events: list[Any] = []
        searched = bool(function or request_id)
        if function:
            self._visible(viewer, function)
        if searched:
            events = await self._search(viewer, function, request_id, text, since)
        names = views.function_names(self._svc, viewer)
        return self._render(
            "logs.html",
            viewer,
            page="logs",
            names=names,
            function=function,
            request_id=request_id,
            text=text,
            since=since,
            searched=searched,
            events=events,
            limit=_LOG_LIMIT,
        )

    async def _search(
        self, viewer: views.Viewer, function: str, request_id: str, text: str, since: str
    ) -> list[Any]:
        now = time.time()
        query = LogQuery(
            log_group=views.log_group(self._svc, function) if function else None,
            request_id=request_id or None,
            since_ms=None if request_id else parse_time_ms(since or "1h", now, "since"),
            contains=text or None,
            limit=_LOG_LIMIT,
        )
        found = await self._svc.logs.query(query)
        # An invoke key reads the logs of its functions only.
        return [e for e in found if viewer.can_see(views.function_of_group(e.log_group))]

    async def _request(self, request: Request, viewer: views.Viewer) -> Response:
        request_id = request.path_params["request_id"]
        events = await self._search(viewer, "", request_id, "", "")
        entry = self._svc.journal.get(request_id)
        if entry is not None and not viewer.can_see(entry.function):
            entry = None
        if not events and entry is None:
            raise errors.NotFound(
                f"No record of request {request_id} (its logs may have aged out, or this key "
                "may not see its function)."
            )
        return self._render(
            "request.html",
            viewer,
            page="logs",
            request_id=request_id,
            **views.request_story(events, entry, self._svc.registry.get),
        )

    async def _cost(self, request: Request, viewer: views.Viewer) -> Response:
        names = views.function_names(self._svc, viewer)
        return self._render("cost.html", viewer, page="cost", names=names)

    async def _cost_estimate(self, request: Request, viewer: views.Viewer) -> Response:
        return await cost_estimate(request)  # the API's own calculator route (JSON)

    async def _cost_report(self, request: Request, viewer: views.Viewer) -> Response:
        function = request.query_params.get("function", "")
        if function and not viewer.can_see(function):
            return await cost_report_refused(function)
        return await cost_report(request)  # the API's own report route (JSON)

    # --- live ---------------------------------------------------------------------------------
    async def _events(self, request: Request, viewer: views.Viewer) -> Response:
        topic = request.query_params.get("topic", "overview")
        kind, _, name = topic.partition(":")
        if kind == "function":
            self._visible(viewer, name)
        elif kind == "provider" and not viewer.admin:
            raise errors.NotFound("This key may not see capacity providers")
        elif kind not in ("overview", "provider"):
            raise errors.InvalidRequest(f"Unknown topic {topic!r}")
        return StreamingResponse(
            self._stream(request, viewer, kind, name),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _stream(
        self, request: Request, viewer: views.Viewer, kind: str, name: str
    ) -> AsyncIterator[str]:
        ends = time.monotonic() + _STREAM_S
        yield "retry: 1000\n\n"
        ticks = 0
        while time.monotonic() < ends and not self._closing.is_set():
            ticks += 1
            if kind == "function":
                data: Any = views.function_live(self._svc, name)
                if ticks % _DURATIONS_EVERY == 1:  # read from the log store: not every second
                    data["durations"] = await views.durations(self._svc, name)
            elif kind == "provider":
                data = views.provider_live(self._svc, name)
                if data is not None:
                    data["history"] = views.provider_history(self._svc, name, minutes=0.05)
            else:
                data = views.overview_live(self._svc, viewer)
            yield f"data: {json.dumps(data)}\n\n"
            try:
                await asyncio.wait_for(self._closing.wait(), _TICK_S)
            except TimeoutError:
                pass
            if await request.is_disconnected():
                break


async def cost_report_refused(function: str) -> Response:
    """The API's answer for a function this key may not see: as if it did not exist."""
    return JSONResponse(
        {"Type": "User", "message": f"Function not found: {function}"},
        status_code=404,
        headers={"x-amzn-ErrorType": "ResourceNotFoundException"},
    )


_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _next(value: str | None) -> str:
    """Where to go after login: a console path only (never another site)."""
    if value and value.startswith("/console/") and not value.startswith("//"):
        return value
    return "/console/"


def _query(request: Request) -> str:
    return f"?{request.url.query}" if request.url.query else ""


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _when(timestamp_ms: int) -> str:
    seconds = timestamp_ms / 1000
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + f".{timestamp_ms % 1000:03d}Z"
