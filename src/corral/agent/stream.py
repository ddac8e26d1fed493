"""The log stream of one execution environment: what its processes write, filed under the
request each is running, and the platform records of every invocation.

Invariants:

* A line is filed under the request its process was running when it wrote it: a worker's
  output is read up to the moment it asks for its next invocation (``polled``) or answers
  (``finished``), before the mapping from its pid to the invocation changes.
* Lines written before an invocation's answer come before its END/REPORT records.
* Where one process runs many invocations at once (``config.shared_process``: Node.js
  worker threads), a pid names no request: each line is filed under the ``requestId`` the
  runtime client wrote into it (its JSON log format); a line without one (a raw
  ``process.stdout.write``, or one written outside any invocation) is stored unattributed.
* ``LogType=Tail`` keeps only the end of an invocation's log (``runtime.invocation.LogTail``).

Callers: ``agent.environment.ExecutionEnvironment`` (one stream each).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from corral.runtime.invocation import Invocation
from corral.runtime.logsock import LogBudget, LogChannels
from corral.telemetry import logs

if TYPE_CHECKING:  # the environment module imports this one
    from corral.agent.environment import EnvironmentConfig

__all__ = ["EnvironmentStream"]

_NOTE_EVERY_S = 60.0


class EnvironmentStream:
    """One environment's log stream (``name``) and the channels that feed it."""

    def __init__(
        self, config: EnvironmentConfig, name: str, sink: logs.LogSink, budget: LogBudget
    ) -> None:
        self._config = config
        self.name = name
        self._sink = sink
        self._group = config.log_group
        self._json = config.spec.logging.log_format == "JSON"
        logging_config = config.spec.logging
        self._levels = logs.LevelFilter(
            logging_config.log_format,
            logging_config.application_log_level,
            logging_config.system_log_level,
        )
        self._by_pid: dict[int | None, Invocation] = {}
        self._shared = config.shared_process
        self._by_request: dict[bytes, Invocation] = {}
        self._throttle_noted_mono = -math.inf
        self.channels = LogChannels(self._on_output, budget, self._on_throttle)

    # --- an invocation's life -----------------------------------------------------------------
    def polled(self, pid: int | None) -> None:
        """A worker asks for work: what it wrote so far belongs to its previous invocation."""
        if self._shared:
            return
        self.channels.drain(pid)
        self._by_pid.pop(pid, None)

    def started(self, invocation: Invocation) -> None:
        """An invocation reached its worker: its lines are its own from now on."""
        if self._shared:
            if invocation.tail is not None:
                self._by_request[invocation.request_id.encode()] = invocation
        else:
            self._by_pid[invocation.worker_pid] = invocation
        now = time.time()
        if self._json:
            args: tuple[Any, ...] = (
                invocation.request_id,
                self._config.ref.version,
                invocation.invoked_arn,
                now,
            )
            self._platform(invocation, "platform.start", args, now)
        else:
            self._platform(
                invocation, "text.start", (invocation.request_id, self._config.ref.version), now
            )

    def finished(
        self,
        invocation: Invocation,
        duration_ms: float,
        error_type: str | None,
        init_ms: float | None,
        peak_memory_bytes: int,
    ) -> tuple[bytes, ...]:
        """Read what its worker wrote, then END/REPORT; return the tail for LogType=Tail."""
        if self._shared:
            self.channels.drain_all()
            if invocation.tail is not None:
                self._by_request.pop(invocation.request_id.encode(), None)
        else:
            self.channels.drain(invocation.worker_pid)
        now = time.time()
        memory_mb = peak_memory_bytes // (1024 * 1024)
        request_id = invocation.request_id
        if self._json:
            status = "error" if error_type else "success"
            self._platform(
                invocation,
                "platform.report",
                (request_id, status, duration_ms, now, memory_mb or None, init_ms, error_type),
                now,
            )
        else:
            self._platform(invocation, "text.end", (request_id,), now)
            self._platform(
                invocation,
                "text.report",
                (request_id, duration_ms, self._config.spec.memory_size_mb, memory_mb, init_ms),
                now,
            )
        return () if invocation.tail is None else invocation.tail.lines()

    def close(self) -> None:
        self.channels.close()

    # --- internals ----------------------------------------------------------------------------
    def _on_output(self, pid: int | None, block: bytes) -> None:
        """Whole lines a process wrote: filed under the request it is running. Splitting
        and filtering them is the log writer's work (one record per block here)."""
        if self._shared:
            for request_id, lines in _by_request_id(block):
                self._emit(
                    self._by_request.get(request_id), request_id.decode(errors="replace"), lines
                )
            return
        invocation = self._by_pid.get(pid)
        self._emit(invocation, "" if invocation is None else invocation.request_id, block)

    def _emit(self, invocation: Invocation | None, request_id: str, block: bytes) -> None:
        if invocation is not None:
            if invocation.tail is not None:
                invocation.tail.add_block(
                    block, self._levels.keeps if self._levels.minimum else None
                )
        self._sink.emit(
            logs.LogRecord(
                time.time(),
                self._group,
                self.name,
                request_id,
                kind=logs.LINES,
                args=(block, self._levels.minimum),
            )
        )

    def _on_throttle(self, wait_s: float) -> None:
        """Say in the stream, at most once a minute, that the environment's output waits."""
        now = time.monotonic()
        if now - self._throttle_noted_mono < _NOTE_EVERY_S:
            return
        self._throttle_noted_mono = now
        rate_mib = self.channels.rate_bytes_per_s / (1024 * 1024)
        self.note(
            f"This environment writes logs faster than {rate_mib:g} MiB/s: its writes wait "
            "until the output is read (nothing is lost). Raise CORRAL_LOG_RATE_BYTES_PER_S "
            "to allow more."
        )

    def note(self, text: str) -> None:
        """A line of Corral's own in the stream (``[corral] ...``), under no request."""
        self._sink.emit(logs.LogRecord(time.time(), self._group, self.name, "", f"[corral] {text}"))

    def _platform(
        self, invocation: Invocation, kind: str, args: tuple[Any, ...], now: float
    ) -> None:
        if not self._levels.platform:
            return
        record = logs.LogRecord(now, self._group, self.name, invocation.request_id, "", kind, args)
        if invocation.tail is not None:
            invocation.tail.add(record.message.encode())
        self._sink.emit(record)


_REQUEST_ID_KEY = b'"requestId":"'


def _by_request_id(block: bytes) -> list[tuple[bytes, bytes]]:
    """Lines of a block grouped by the request id each carries (runs of lines kept whole).

    aws-lambda-ric's JSON lines have the form ``{"timestamp":...,"level":...,"requestId":
    "<id>",...}``; ``-`` (outside an invocation) and lines without the key give ``b""``.
    """
    groups: list[tuple[bytes, bytes]] = []
    for line in block.split(b"\n"):
        request_id = b""
        start = line.find(_REQUEST_ID_KEY, 0, 160)
        if start >= 0:
            start += len(_REQUEST_ID_KEY)
            end = line.find(b'"', start)
            if end > start and line[start:end] != b"-":
                request_id = line[start:end]
        if groups and groups[-1][0] == request_id:
            groups[-1] = (request_id, groups[-1][1] + b"\n" + line)
        else:
            groups.append((request_id, line))
    return groups
