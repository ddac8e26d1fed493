"""Log records and where they go.

Every record carries its log group, its stream (one per execution environment, named like
AWS: ``YYYY/MM/DD/[version]<environment id>``) and the request id it belongs to (empty for
init output). ``telemetry.logstore`` keeps them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "LINES",
    "LevelFilter",
    "LogRecord",
    "LogSink",
    "TEMPLATES",
    "json_request_id",
    "platform_report",
    "platform_start",
    "render",
    "split_lines",
    "stream_name",
    "text_end",
    "text_report",
    "text_start",
]


# The kind of a record holding a block of a function's output: ``args`` are the block
# (whole lines joined by newlines, as bytes) and the least level to keep (``LevelFilter``).
LINES = "lines"


class LogRecord:
    """One line of a log stream, or a block of lines (``kind == LINES``).

    A platform record is kept as a template name and its arguments (``kind``, ``args``):
    it is rendered when first read (``message``), and the log writer process renders what
    it stores, so the invoke path never formats one. ``kind`` is empty for a plain line.
    A block of function output is split, decoded and filtered by the log writer too.
    """

    __slots__ = ("timestamp_s", "log_group", "log_stream", "request_id", "kind", "args", "_message")

    def __init__(
        self,
        timestamp_s: float,
        log_group: str,
        log_stream: str,
        request_id: str,
        message: str = "",
        kind: str = "",
        args: tuple[Any, ...] = (),
    ) -> None:
        self.timestamp_s = timestamp_s
        self.log_group = log_group
        self.log_stream = log_stream
        self.request_id = request_id
        self.kind = kind
        self.args = args
        self._message: str | None = None if kind else message

    @property
    def message(self) -> str:
        if self._message is None:
            self._message = render(self.kind, self.args)
        return self._message

    def __repr__(self) -> str:
        return f"LogRecord({self.log_stream!r}, {self.request_id!r}, {self.message!r})"


class LogSink(Protocol):
    """Receives every log record Corral produces."""

    def emit(self, record: LogRecord) -> None: ...


def stream_name(version: str, environment_id: str, epoch_s: float | None = None) -> str:
    """AWS's log stream name for one execution environment."""
    day = time.strftime("%Y/%m/%d", time.gmtime(time.time() if epoch_s is None else epoch_s))
    return f"{day}/[{version}]{environment_id}"


_second_cache: tuple[int, str] = (-1, "")


def _iso(epoch_s: float) -> str:
    """``2026-11-28T15:04:05.123Z``; the part up to the second is formatted once a second."""
    global _second_cache
    second = int(epoch_s)
    cached_second, prefix = _second_cache
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_cache = (second, prefix)
    return f"{prefix}.{int(epoch_s * 1000) % 1000:03d}Z"


def platform_start(request_id: str, version: str, function_arn: str, epoch_s: float) -> str:
    """A ``platform.start`` record (JSON log format).

    Formatted by hand rather than with ``json.dumps``: it is written for every invocation.
    Request ids, versions and ARNs never hold characters JSON would escape.
    """
    return (
        f'{{"time": "{_iso(epoch_s)}", "type": "platform.start", "record": '
        f'{{"requestId": "{request_id}", "version": "{version}", '
        f'"functionArn": "{function_arn}"}}}}'
    )


def platform_report(
    request_id: str,
    status: str,
    duration_ms: float,
    epoch_s: float,
    max_memory_used_mb: int | None = None,
    init_duration_ms: float | None = None,
    error_type: str | None = None,
) -> str:
    """A ``platform.report`` record (JSON log format); by hand, as ``platform_start``."""
    metrics = f'"durationMs": {round(duration_ms, 3)!r}'
    if max_memory_used_mb is not None:
        metrics += f', "maxMemoryUsedMB": {int(max_memory_used_mb)}'
    if init_duration_ms is not None:
        metrics += f', "initDurationMs": {round(init_duration_ms, 3)!r}'
    tail = f', "errorType": {json.dumps(error_type)}' if error_type else ""
    return (
        f'{{"time": "{_iso(epoch_s)}", "type": "platform.report", "record": '
        f'{{"requestId": "{request_id}", "status": "{status}", "metrics": {{{metrics}}}{tail}}}}}'
    )


def text_start(request_id: str, version: str) -> str:
    """The START line of a classic function (Text log format)."""
    return f"START RequestId: {request_id} Version: {version}"


def text_end(request_id: str) -> str:
    """The END line of a classic function (Text log format)."""
    return f"END RequestId: {request_id}"


def text_report(
    request_id: str,
    duration_ms: float,
    memory_size_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None,
) -> str:
    """The REPORT line of a classic function (Text log format)."""
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\t"
        f"Memory Size: {memory_size_mb} MB\tMax Memory Used: {max_memory_used_mb} MB"
    )
    if init_duration_ms is not None:
        line += f"\tInit Duration: {init_duration_ms:.2f} ms"
    return line


# The templates of platform records, by ``LogRecord.kind``.
TEMPLATES: dict[str, Callable[..., str]] = {
    "platform.start": platform_start,
    "platform.report": platform_report,
    "text.start": text_start,
    "text.end": text_end,
    "text.report": text_report,
}


def render(kind: str, args: tuple[Any, ...]) -> str:
    """A platform record's text from its template name and arguments (a block of output:
    its lines that pass the filter, joined by newlines).

    Raises:
        KeyError: an unknown template.
    """
    if kind == LINES:
        return "\n".join(text for _, text in split_lines(args[0], args[1], ""))
    return TEMPLATES[kind](*args)


def split_lines(block: bytes, minimum_level: int, request_id: str) -> list[tuple[str, str]]:
    """``(request id, text)`` of each line of a block of output that passes the level
    filter. A line of no known request that is a JSON record with a ``requestId`` (the
    runtime's own JSON logs) is filed under that id."""
    result: list[tuple[str, str]] = []
    for raw in block.split(b"\n"):
        text = raw.decode("utf-8", "replace")
        if minimum_level and _line_level(text) < minimum_level:
            continue
        owner = request_id
        if not owner and text.startswith("{") and '"requestId"' in text:
            owner = json_request_id(text)
        result.append((owner, text))
    return result


def json_request_id(text: str) -> str:
    """The ``requestId`` of a JSON log line, or ``""``."""
    try:
        data = json.loads(text)
    except ValueError:
        return ""
    if isinstance(data, dict) and isinstance(data.get("requestId"), str):
        return str(data["requestId"])
    return ""


# Application log levels, least to most severe (LoggingConfig.ApplicationLogLevel).
_LEVELS = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "ERROR": 4, "FATAL": 5}
_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL"}
_INFO = _LEVELS["INFO"]


def _line_level(text: str) -> int:
    """A JSON line's ``level`` (AWS: a missing or unknown level counts as INFO)."""
    if not (text.startswith("{") and '"level"' in text):
        return _INFO
    try:
        data = json.loads(text)
    except ValueError:
        return _INFO
    level = data.get("level") if isinstance(data, dict) else None
    if not isinstance(level, str):
        return _INFO
    name = level.upper()
    return _LEVELS.get(_ALIASES.get(name, name), _INFO)


class LevelFilter:
    """LoggingConfig's level filtering, which AWS applies to JSON-format functions only.

    Application lines below ``ApplicationLogLevel`` are dropped (a line without a JSON
    ``level``, ``print()`` included, is INFO); platform records (``platform.start``,
    ``platform.report``: INFO) are dropped when ``SystemLogLevel`` is WARN.
    """

    __slots__ = ("minimum", "platform")

    def __init__(
        self, log_format: str, application_level: str | None, system_level: str | None
    ) -> None:
        json_format = log_format == "JSON"
        wanted = (application_level or "INFO").upper()
        # The least level kept (0: every line, as for the Text format).
        self.minimum = _LEVELS.get(_ALIASES.get(wanted, wanted), _INFO) if json_format else 0
        self.platform = not (json_format and (system_level or "").upper() == "WARN")

    def keeps(self, text: str) -> bool:
        """Whether an application line passes the filter."""
        if self.minimum == 0:
            return True
        return _line_level(text) >= self.minimum
