"""Durable, bounded function and system logs, as the server sees them.

The invoke path hands a ``LogRecord`` to ``emit``, which appends a tuple to a list (about a
microsecond; platform records stay unrendered). Every quarter second the event loop sends
what accumulated, in one frame, to the log writer process (``telemetry.logwriter``), which
renders, stores and applies retention. A query first asks the writer to confirm it stored
everything sent so far, then reads ``logs.db`` through the server's own connection, so
``corral logs`` right after an invoke shows that invoke.

If the writer dies it is started again and says so in the server log; what it had not
stored is lost. If it cannot keep up, at most ``_MAX_BUFFERED_BYTES`` wait for it and later
records are dropped and counted (``dropped``, ``dropped_bytes``), so a slow disk never grows
the server. Each stream that lost records gets a ``platform.logsDropped`` record (the shape of
Lambda's Telemetry API) once the writer takes records again, saying how many: a gap in a log
is never silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path

from corral.core import errors
from corral.core.tasks import TaskGroup
from corral.telemetry.logdb import LogDatabase, LogQuery, Retention, StoredEvent
from corral.telemetry.logs import LINES, LogRecord
from corral.telemetry.logwriter import WireRecord, encode

__all__ = ["DiscardedLogs", "LogStore"]

_log = logging.getLogger(__name__)

_FLUSH_INTERVAL_S = 0.25
_SYNC_TIMEOUT_S = 10.0
_START_TIMEOUT_S = 120.0  # retention at start may delete a lot
_STOP_TIMEOUT_S = 30.0
_MAX_BUFFERED_BYTES = 16 * 1024 * 1024
_DROPPED_REASON = (
    "Some logs were dropped because the downstream consumer is slower than the logs production rate"
)


class LogStore:
    """The log sink of a running server, and what ``corral logs`` reads."""

    def __init__(self, path: Path, retention: Retention | None = None) -> None:
        self.path = path
        self.retention = retention or Retention()
        self.dropped = 0
        self.dropped_bytes = 0
        # (log group, log stream) -> [records, bytes] lost and not yet reported in the stream.
        self._lost: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        self._pending: list[WireRecord] = []
        self._db: LogDatabase | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._next_token = 0
        self._tasks = TaskGroup("logs")
        self._closing = False

    # --- the sink ---------------------------------------------------------------------------
    def emit(self, record: LogRecord) -> None:
        self._pending.append(
            (
                record.timestamp_s,
                record.log_group,
                record.log_stream,
                record.request_id,
                record.kind,
                record.args if record.kind else record.message,
            )
        )

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the database, start the writer and the periodic flush.

        Raises:
            errors.CorralError: the writer did not start.
        """
        self._db = LogDatabase(self.path, self.retention)  # creates the schema
        await self._spawn()
        self._tasks.spawn(self._flush_forever(), name="flush")

    async def close(self) -> None:
        """Send what is pending, let the writer store it and exit, close the database."""
        self._closing = True
        await self._tasks.cancel_all()
        process = self._process
        if process is not None and process.stdin is not None:
            self._send_pending()
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_S)
            except TimeoutError:
                _log.error("the log writer did not stop in %.0f s; killed", _STOP_TIMEOUT_S)
                process.kill()
                await process.wait()
        if self._db is not None:
            self._db.close()
            self._db = None

    async def _spawn(self) -> None:
        self._process = process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "corral.telemetry.logwriter",
            str(self.path),
            repr(self.retention.max_age_s),
            str(self.retention.max_bytes),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), _START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise errors.CorralError(
                f"the log writer did not start (exit status {process.returncode}); see the "
                "lines above, or run with CORRAL_LOG_STORE=off to keep no logs"
            )
        self._tasks.spawn(self._answers(process), name="answers")

    async def _answers(self, process: asyncio.subprocess.Process) -> None:
        """Resolve syncs as the writer confirms them; start it again if it dies."""
        assert process.stdout is not None
        async for line in process.stdout:
            waiter = self._acks.pop(int(line), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        status = await process.wait()
        for waiter in self._acks.values():
            if not waiter.done():
                waiter.set_exception(errors.CorralError("the log writer stopped"))
        self._acks.clear()
        if self._closing:
            return
        _log.error("the log writer exited (status %s); starting it again", status)
        await asyncio.sleep(1.0)
        if not self._closing:
            await self._spawn()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_INTERVAL_S)
            self._send_pending()

    def _send_pending(self) -> None:
        if not self._pending:
            return
        records, self._pending = self._pending, []
        if not self._writer_takes_more():
            self._lose(records)
            return
        if self._lost:
            records = self._lost_notices() + records
        self._write(("rows", records))

    def _send(self, message: tuple[str, object]) -> bool:
        if not self._writer_takes_more():
            return False
        self._write(message)
        return True

    def _writer_takes_more(self) -> bool:
        process = self._process
        if process is None or process.stdin is None or process.returncode is not None:
            return False
        return process.stdin.transport.get_write_buffer_size() <= _MAX_BUFFERED_BYTES

    def _write(self, message: tuple[str, object]) -> None:
        process = self._process
        assert process is not None and process.stdin is not None
        process.stdin.write(encode(message))

    def _lose(self, records: list[WireRecord]) -> None:
        """Count records the writer cannot take, per stream, for the notices."""
        if self.dropped == 0:
            _log.warning("the log writer cannot keep up or is not running: records are dropped")
        for _, group, stream, _, kind, payload in records:
            count, size = 1, 0
            if kind == LINES:
                count = payload[0].count(b"\n") + 1
                size = len(payload[0])
            elif not kind:
                size = len(payload)
            lost = self._lost[(group, stream)]
            lost[0] += count
            lost[1] += size
            self.dropped += count
            self.dropped_bytes += size

    def _lost_notices(self) -> list[WireRecord]:
        now = time.time()
        notices: list[WireRecord] = []
        for (group, stream), (count, size) in self._lost.items():
            record = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
                + f".{int(now * 1000) % 1000:03d}Z",
                "type": "platform.logsDropped",
                "record": {
                    "reason": _DROPPED_REASON,
                    "droppedRecords": count,
                    "droppedBytes": size,
                },
            }
            notices.append((now, group, stream, "", "", json.dumps(record)))
        self._lost.clear()
        return notices

    # --- reading -----------------------------------------------------------------------------
    async def sync(self) -> None:
        """Return once the writer stored every record emitted before the call.

        Raises:
            errors.CorralError: the writer is not running or did not answer in time.
        """
        self._send_pending()
        self._next_token += 1
        token = self._next_token
        waiter = asyncio.get_running_loop().create_future()
        self._acks[token] = waiter
        if not self._send(("sync", token)):
            self._acks.pop(token, None)
            raise errors.CorralError("the log writer is not running")
        try:
            await asyncio.wait_for(waiter, _SYNC_TIMEOUT_S)
        except TimeoutError:
            self._acks.pop(token, None)
            raise errors.CorralError(
                f"the log writer did not answer in {_SYNC_TIMEOUT_S:.0f} s"
            ) from None

    async def query(self, query: LogQuery) -> list[StoredEvent]:
        """Matching records, oldest first, at most ``query.limit``; the most recent ones
        are included if the writer confirms them in time."""
        if self._db is None:
            return []
        try:
            await self.sync()
        except errors.CorralError as exc:
            _log.warning("reading logs without the latest records: %s", exc.message)
        return await asyncio.to_thread(self._db.query, query)

    async def reports(self, log_group: str, since_ms: int, until_ms: int) -> list[tuple[int, str]]:
        """The report records of a group in a time range (``LogDatabase.reports``).

        Raises:
            errors.CorralError: logs are not kept (``CORRAL_LOG_STORE=off``).
        """
        db = self._ready_db()
        with contextlib.suppress(errors.CorralError):
            await self.sync()
        return await asyncio.to_thread(db.reports, log_group, since_ms, until_ms)

    async def messages(self, log_group: str) -> list[tuple[int, str]]:
        """Every record of a small group, such as a capacity provider's system log."""
        db = self._ready_db()
        with contextlib.suppress(errors.CorralError):
            await self.sync()
        return await asyncio.to_thread(db.messages, log_group)

    def _ready_db(self) -> LogDatabase:
        if self._db is None:
            raise errors.InvalidRequest(
                "Corral keeps no logs (CORRAL_LOG_STORE=off), so there is nothing to measure"
            )
        return self._db


class DiscardedLogs(LogStore):
    """``CORRAL_LOG_STORE=off``: records are dropped (LogType=Tail still has them)."""

    def __init__(self) -> None:
        super().__init__(Path("/dev/null"))

    def emit(self, record: LogRecord) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def query(self, query: LogQuery) -> list[StoredEvent]:
        return []
