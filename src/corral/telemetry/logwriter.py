"""The log writer process: ``python -m corral.telemetry.logwriter DB MAX_AGE_S MAX_BYTES``.

The server sends it batches of records; it renders the platform records, stores everything
in the log database and applies retention. None of that work, nor SQLite's, runs in the
server's process, where it would take the interpreter lock from the invoke path (measured:
a writer *thread* there cost 12% of the invoke rate, docs/benchmarks.md). It runs
niced, below the invoke path.

Protocol. Stdin carries frames: a 4-byte big-endian length, then a pickle of
``("rows", [record, ...])`` or ``("sync", n)``; a record is ``(timestamp_s, log_group,
log_stream, request_id, kind, payload)``, the payload being the message when ``kind`` is
empty, ``(block, minimum level)`` for a block of function output (``logs.LINES``: split into
one row per line here) and the template's arguments otherwise (``telemetry.logs.TEMPLATES``).
Stdout carries
lines: ``ready`` once the database is open and retention applied, then ``n`` for each
``("sync", n)`` once every record sent before it is committed.

The end of stdin means: store what came, exit. SIGINT is ignored: Ctrl+C reaches the whole
process group, and the server, which is draining, still has records to send.

Priority. Storing logs is background work: the invoke path (server, runtimes) gets the CPU
first. Where it may (as root), the writer runs under ``SCHED_IDLE``: it uses CPU time nobody
else wants and any waking invoke-path process preempts it at once, across cgroups (a mere
nice value only ranks it within the server's own cgroup, not against the execution
environments' cgroups). If the machine has no idle time left and the writer falls behind
(its records are more than ``_LAG_HIGH_S`` old when stored), it goes back to a normal, niced
priority until it has caught up (``_LAG_LOW_S``), so logs are late under saturation, never
starved. Elsewhere it is only niced.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from corral.telemetry.logdb import LogDatabase, Retention, Row, version_of
from corral.telemetry.logs import LINES, render, split_lines

__all__ = [
    "HEADER_BYTES",
    "Priority",
    "WireRecord",
    "encode",
    "idle_next",
    "main",
    "serve",
    "to_rows",
]

HEADER_BYTES = 4
_RETENTION_INTERVAL_S = 60.0
_NICENESS = 10
_LAG_HIGH_S = 2.0
_LAG_LOW_S = 0.5
# (timestamp_s, log_group, log_stream, request_id, kind, message or template arguments)
WireRecord = tuple[float, str, str, str, str, Any]


def encode(message: object) -> bytes:
    """One frame: the length, then the pickle."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return len(body).to_bytes(HEADER_BYTES, "big") + body


def to_rows(records: Iterable[WireRecord], versions: dict[str, str]) -> list[Row]:
    """Database rows: platform records rendered, blocks of output split into their lines
    (``telemetry.logs.split_lines``); ``versions`` caches each stream's version."""
    rows: list[Row] = []
    for timestamp_s, group, stream, request_id, kind, payload in records:
        version = versions.get(stream)
        if version is None:
            if len(versions) > 10_000:
                versions.clear()
            version = versions[stream] = version_of(stream)
        ts_ms = int(timestamp_s * 1000)
        if kind == LINES:
            try:
                lines = split_lines(payload[0], payload[1], request_id)
            except Exception as exc:  # a record must never stop the writer
                lines = [(request_id, f"[corral: cannot read a block of output: {exc}]")]
            rows.extend((ts_ms, group, stream, version, owner, text) for owner, text in lines)
            continue
        if kind:
            try:
                message = render(kind, payload)
            except Exception as exc:  # a record must never stop the writer
                message = f"[corral: cannot render {kind} {payload!r}: {exc}]"
        else:
            message = payload
        rows.append((ts_ms, group, stream, version, request_id, message))
    return rows


def idle_next(idle: bool, lag_s: float) -> bool:
    """Whether to run idle after storing records ``lag_s`` old (hysteresis between the
    two thresholds, so the policy does not flap)."""
    if idle:
        return lag_s < _LAG_HIGH_S
    return lag_s <= _LAG_LOW_S


class Priority:
    """The writer's scheduling: idle while it keeps up, normal (niced) while it lags.

    ``adaptive`` is false where the writer could not leave ``SCHED_IDLE`` again (switching
    back needs root or ``CAP_SYS_NICE``): it then stays niced at normal priority."""

    def __init__(self, adaptive: bool) -> None:
        self.adaptive = adaptive
        self.idle = False
        self.switches = 0

    def after(self, lag_s: float) -> None:
        """Adjust after storing a batch whose oldest record is ``lag_s`` old."""
        if not self.adaptive:
            return
        idle = idle_next(self.idle, lag_s)
        if idle != self.idle:
            self.set(idle)

    def set(self, idle: bool) -> None:
        policy = os.SCHED_IDLE if idle else os.SCHED_OTHER
        try:
            os.sched_setscheduler(0, policy, os.sched_param(0))
        except OSError as exc:  # not allowed after all: stay as we are, say it once
            print(f"corral log writer: cannot change priority: {exc}", file=sys.stderr)
            self.adaptive = False
            return
        self.idle = idle
        self.switches += 1


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def serve(
    db: LogDatabase,
    stdin: BinaryIO,
    answer: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    priority: Priority | None = None,
    wall: Callable[[], float] = time.time,
) -> None:
    """Store every frame from ``stdin`` until it ends; apply retention every minute."""
    priority = priority or Priority(adaptive=False)
    fd = stdin.fileno()
    versions: dict[str, str] = {}
    next_retention = clock() + _RETENTION_INTERVAL_S
    while True:
        ready, _, _ = select.select([fd], [], [], max(0.0, next_retention - clock()))
        if ready:
            header = _read_exactly(fd, HEADER_BYTES)
            body = None if header is None else _read_exactly(fd, int.from_bytes(header, "big"))
            if body is None:
                return
            what, data = pickle.loads(body)
            if what == "rows":
                try:
                    db.insert(to_rows(data, versions))
                except Exception as exc:  # disk full, say: tell, keep serving
                    print(f"corral log writer: {len(data)} records lost: {exc}", file=sys.stderr)
                if data:
                    priority.after(wall() - data[0][0])
            elif what == "sync":
                answer(str(data))
        if clock() >= next_retention:
            next_retention = clock() + _RETENTION_INTERVAL_S
            db.enforce_retention()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m corral.telemetry.logwriter DB MAX_AGE_S MAX_BYTES", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(_NICENESS)  # see "Priority" above
    priority = Priority(adaptive=os.geteuid() == 0)
    if priority.adaptive:
        priority.set(idle=True)
    db = LogDatabase(Path(args[0]), Retention(max_age_s=float(args[1]), max_bytes=int(args[2])))

    def answer(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        db.enforce_retention()
        answer("ready")
        serve(db, sys.stdin.buffer, answer, priority=priority)
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
