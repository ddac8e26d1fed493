"""Which Lambda operation a request calls, from botocore's model of the API.

Authorisation needs the operation's name and the function it names before any route runs,
so every operation's method and path template (``/2015-03-31/functions/{FunctionName}/
invocations``) is matched here, most specific template first. Paths that are not Lambda's
(``/corral/v1/...``, ``/metrics``) are Corral's own operations, named by their path.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from dataclasses import dataclass

import botocore.session

__all__ = ["Operation", "operation_of"]


@dataclass(frozen=True)
class Operation:
    """An operation and the function it names (``FunctionName`` as given, if any)."""

    name: str
    function_name: str | None
    lambda_api: bool


@functools.cache
def _templates() -> tuple[tuple[str, re.Pattern[str], str], ...]:
    model = botocore.session.get_session().get_service_model("lambda")
    found = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        template = http["requestUri"].split("?", 1)[0]
        pattern = re.sub(
            r"\{(\w+)(\+?)\}",
            lambda m: f"(?P<{m.group(1)}>{'.+' if m.group(2) else '[^/]+'})",
            re.escape(template).replace(r"\{", "{").replace(r"\}", "}"),
        )
        literal = len(re.sub(r"\{\w+\+?\}", "", template))
        found.append((literal, http["method"], re.compile(pattern + "/?$"), name))
    found.sort(key=lambda item: -item[0])
    return tuple((method, regex, name) for _, method, regex, name in found)


@functools.lru_cache(maxsize=4096)  # the same few paths come again and again
def operation_of(method: str, path: str) -> Operation:
    """The operation a request calls; ``path`` as on the wire (percent-encoded)."""
    decoded = urllib.parse.unquote(path)
    for template_method, regex, name in _templates():
        if template_method != method:
            continue
        match = regex.match(path)
        if match is not None:
            groups = match.groupdict()
            raw = groups.get("FunctionName")
            function = urllib.parse.unquote(raw) if raw is not None else None
            return Operation(name, function, True)
    return Operation(decoded, None, False)
