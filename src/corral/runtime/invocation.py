"""One invocation on its way through an execution environment, and its result.

An ``Invocation`` is created by the router, queued on an environment, written to a runtime
worker as the answer to its ``/next``, and completed by that worker's ``/response`` or
``/error``. The caller awaits ``future``; the slot is held until the *runtime* answers, even
when the caller already got ``Sandbox.Timedout`` (Managed Instances never stops the code).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "ChunkSink",
    "MAX_RESPONSE_BYTES",
    "TAIL_BYTES",
    "Invocation",
    "InvocationResult",
    "LogTail",
    "error_payload",
    "new_request_id",
    "new_trace_id",
]

# RAPID caps a response at 6 MiB + 100 bytes (``interop.MaxPayloadSize``).
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100
# Takes each chunk of a streamed response, with the stream's content type.
ChunkSink = Callable[[bytes, str], None]
# LogType=Tail returns the last 4 KB of the invocation's log.
TAIL_BYTES = 4096


# Request and trace ids need to be unique, not secret: a seeded PRNG saves a getrandom
# system call per id on the invoke path.
_random = random.Random(os.urandom(32))
_RAND_A_BITS = 12
_RAND_B_BITS = 62


def new_request_id() -> str:
    """A request id: a UUID in the text form Lambda uses, of version 7 (RFC 9562).

    Version 7 starts with the time in milliseconds, so ids sort by when they were made and
    the log store's request-id index grows at its end; random (version 4) ids made every
    insert touch a random page of that index, which cost 7x the insert time over 400,000
    records (docs/benchmarks.md).
    """
    millis = time.time_ns() // 1_000_000
    value = (
        (millis & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76
        | _random.getrandbits(_RAND_A_BITS) << 64
        | 0x2 << 62
        | _random.getrandbits(_RAND_B_BITS)
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_trace_id() -> str:
    """An X-Ray trace header like the one Lambda passes to the runtime."""
    return f"Root=1-{int(time.time()):08x}-{_random.getrandbits(96):024x};Sampled=0"


def error_payload(error_type: str, message: str) -> bytes:
    """The JSON body of a platform error, as the invoker receives it."""
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class LogTail:
    """The end of one invocation's log, which ``LogType=Tail`` returns: whole lines, at
    least the last ``TAIL_BYTES`` of them when there are that many, never much more (a
    function may print gigabytes; only this much is kept)."""

    __slots__ = ("_lines", "_size")

    def __init__(self) -> None:
        self._lines: collections.deque[bytes] = collections.deque()
        self._size = 0

    def add(self, line: bytes) -> None:
        """Append one line (without its newline)."""
        lines = self._lines
        lines.append(line)
        self._size += len(line) + 1
        while len(lines) > 1 and self._size - len(lines[0]) - 1 >= TAIL_BYTES:
            self._size -= len(lines.popleft()) + 1

    def add_block(self, block: bytes, keeps: Callable[[str], bool] | None = None) -> None:
        """Append the lines of ``block`` (lines joined by newlines) that ``keeps`` accepts;
        only the end of a long block is looked at."""
        window = 2 * TAIL_BYTES
        if len(block) > window:
            start = block.find(b"\n", len(block) - window)
            block = block[start + 1 :] if start >= 0 else block[-window:]
        for line in block.split(b"\n"):
            if keeps is None or keeps(line.decode("utf-8", "replace")):
                self.add(line)

    def lines(self) -> tuple[bytes, ...]:
        return tuple(self._lines)


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """What the caller gets back: the payload, and whether it is a function error."""

    payload: bytes
    error_type: str | None = None
    duration_ms: float = 0.0
    log_lines: tuple[bytes, ...] = ()
    init_duration_ms: float | None = None

    @property
    def is_error(self) -> bool:
        return self.error_type is not None


@dataclass(eq=False, slots=True)
class Invocation:
    """One invocation assigned to (or waiting for) a runtime worker."""

    request_id: str
    payload: bytes
    invoked_arn: str
    timeout_s: float
    future: asyncio.Future[InvocationResult]
    client_context: str = ""
    trace_id: str = ""
    # Kept only for LogType=Tail.
    tail: LogTail | None = None
    deadline_epoch_ms: int = 0
    dispatched_mono: float = 0.0
    worker_pid: int | None = None
    runtime_answered: bool = False
    # Called once the slot is free again (the runtime answered, or its worker is gone):
    # how a remote agent tells the server, which counts slots too.
    on_release: Callable[[], None] | None = None
    # Set when the caller takes a streamed response as it comes (InvokeWithResponseStream):
    # called with each chunk and the stream's content type.
    on_chunk: ChunkSink | None = None

    def resolve(self, result: InvocationResult) -> bool:
        """Give the caller its result unless it already has one (e.g. a timeout)."""
        if self.future.done():
            return False
        self.future.set_result(result)
        return True
