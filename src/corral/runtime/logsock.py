"""Where runtime output arrives: the log socket and the runtime's own stdout/stderr.

In Managed Instances mode every awslambdaric worker connects twice to the Unix socket named
by ``_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET`` and ``dup2``s the connections onto its
stdout and stderr (``LMI_FACTS.md`` §3.3). The runtime's main process writes to a socket pair
created at spawn. Each channel knows the pid at its other end (``SO_PEERCRED``), which is
how a plain ``print()`` line is attributed to the request its worker is running.

``drain(pid)`` reads whatever that process has written so far, synchronously: the execution
environment calls it when the worker answers an invocation, so every line written before
the answer is attributed to that invocation.

A function that prints without pause must not slow the others (they share this event
loop). Three rules keep the cost of output bounded, whatever a function writes:

* Output is handed on in blocks of whole lines (``OutputCallback``): one call per read,
  never one per line. Splitting, decoding and filtering lines is the log writer process's
  work (``telemetry.logwriter``).
* Each callback of the event loop reads at most one chunk from one channel, so many busy
  channels are served in turn.
* Each environment may be read at ``LogBudget.rate_bytes_per_s`` on average, every line
  counting ``LINE_COST_BYTES`` more than its length (storing a line costs the log writer
  about as much as storing that many bytes). Past that its channels are not read for a
  while: the kernel's socket buffers fill and the function's own writes wait
  (backpressure; nothing is lost). ``drain`` reads regardless (what a worker wrote before
  answering is bounded by those buffers), and its bytes count too.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LINE_COST_BYTES", "LogBudget", "LogChannels", "MAX_RECORD_BYTES", "OutputCallback"]

# CloudWatch's largest event; a longer line is split.
MAX_RECORD_BYTES = 256 * 1024
# What a line costs of an environment's budget beyond its length.
LINE_COST_BYTES = 128
_READ_SIZE = 65536

# ``(pid, block)``: one or more whole lines joined by b"\n" (no trailing newline).
OutputCallback = Callable[[int | None, bytes], None]
# Told when an environment's output starts waiting for its budget (seconds it will wait).
ThrottleCallback = Callable[[float], None]


@dataclass(frozen=True)
class LogBudget:
    """How fast one environment's output is read: a token bucket of bytes."""

    rate_bytes_per_s: float = 1024 * 1024
    burst_bytes: float = 1024 * 1024

    @property
    def unlimited(self) -> bool:
        return self.rate_bytes_per_s <= 0


class _Channel:
    __slots__ = ("sock", "pid", "stream", "partial")

    def __init__(self, sock: socket.socket, pid: int | None, stream: str) -> None:
        self.sock = sock
        self.pid = pid
        self.stream = stream
        self.partial = b""


class LogChannels:
    """All output channels of one execution environment."""

    def __init__(
        self,
        on_output: OutputCallback,
        budget: LogBudget | None = None,
        on_throttle: ThrottleCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_output = on_output
        self._on_throttle = on_throttle
        self._budget = budget or LogBudget(rate_bytes_per_s=0)
        self._clock = clock
        self._tokens = self._budget.burst_bytes
        self._refilled = clock()
        self._paused: asyncio.TimerHandle | None = None
        self._listener: socket.socket | None = None
        self._channels: dict[int, _Channel] = {}
        self._by_pid: dict[int | None, list[_Channel]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bytes_read = 0
        self.throttled_s = 0.0

    @property
    def rate_bytes_per_s(self) -> float:
        return self._budget.rate_bytes_per_s

    def listen(self, path: Path) -> None:
        """Accept worker connections on the Unix socket ``path``."""
        self._loop = asyncio.get_running_loop()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(path))
            listener.listen(256)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self._loop.add_reader(listener.fileno(), self._accept)

    def socket_pair(self, stream: str) -> socket.socket:
        """A socket for a child's stdout or stderr; the other end is read here.

        The pid is unknown until ``set_pid`` (the child does not exist yet).
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._add(ours, None, stream)
        return theirs

    def set_pid(self, pid: int) -> None:
        """Give the socket-pair channels (created before the spawn) their child's pid."""
        for channel in self._by_pid.pop(None, []):
            channel.pid = pid
            self._by_pid.setdefault(pid, []).append(channel)

    def drain(self, pid: int | None) -> None:
        """Read everything ``pid`` has written so far and hand on its complete lines."""
        self._drain(self._by_pid.get(pid))

    def drain_all(self) -> None:
        """Read everything every channel has written so far (one process, many requests)."""
        self._drain(list(self._channels.values()))

    def _drain(self, channels: list[_Channel] | None) -> None:
        if not channels:
            return
        # One system call tells which of the channels hold data (usually none).
        ready, _, _ = select.select([c.sock for c in channels], [], [], 0)
        for channel in channels:
            if channel.sock in ready:
                while self._read_once(channel):
                    pass

    def close(self) -> None:
        """Read what is left, hand on unfinished lines, and close every channel."""
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None
        if self._listener is not None and self._loop is not None:
            self._loop.remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        for channel in list(self._channels.values()):
            while self._read_once(channel):
                pass
            if channel.sock.fileno() >= 0:
                self._flush_partial(channel)
                self._remove(channel)

    # internals --------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid = struct.unpack("3i", creds)[0]
            # The first connection of a worker is its stdout, the second its stderr.
            known = len(self._by_pid.get(pid, ()))
            self._add(sock, pid, "stdout" if known == 0 else "stderr")

    def _add(self, sock: socket.socket, pid: int | None, stream: str) -> None:
        sock.setblocking(False)
        channel = _Channel(sock, pid, stream)
        self._channels[sock.fileno()] = channel
        self._by_pid.setdefault(pid, []).append(channel)
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        if self._paused is None:
            loop.add_reader(sock.fileno(), self._on_readable, channel)

    def _remove(self, channel: _Channel) -> None:
        fd = channel.sock.fileno()
        if fd >= 0 and self._loop is not None:
            self._loop.remove_reader(fd)
        self._channels.pop(fd, None)
        siblings = self._by_pid.get(channel.pid)
        if siblings is not None and channel in siblings:
            siblings.remove(channel)
        with contextlib.suppress(OSError):
            channel.sock.close()

    def _on_readable(self, channel: _Channel) -> None:
        """One chunk per call (channels take turns), then the budget is checked."""
        self._read_once(channel)
        if self._budget.unlimited or self._paused is not None:
            return
        self._refill()
        if self._tokens < 0:
            self._pause(-self._tokens / self._budget.rate_bytes_per_s)

    def _read_once(self, channel: _Channel) -> bool:
        """Read one chunk; return whether more may be waiting."""
        try:
            data = channel.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            self._flush_partial(channel)
            self._remove(channel)
            return False
        self.bytes_read += len(data)
        self._tokens -= len(data) + LINE_COST_BYTES * data.count(b"\n")
        self._hand_on(channel, data)
        return len(data) == _READ_SIZE

    def _hand_on(self, channel: _Channel, data: bytes) -> None:
        end = data.rfind(b"\n")
        if end < 0:
            channel.partial += data
        else:
            block = data[:end]
            if channel.partial:
                block = channel.partial + block
                # Only the first line can be too long: the rest came in one read. The
                # unfinished part is never longer than a record, so one cut is enough.
                if len(channel.partial) + data.find(b"\n") > MAX_RECORD_BYTES:
                    self._on_output(channel.pid, block[:MAX_RECORD_BYTES])
                    block = block[MAX_RECORD_BYTES:]
            channel.partial = data[end + 1 :]
            self._on_output(channel.pid, block)
        while len(channel.partial) > MAX_RECORD_BYTES:
            self._on_output(channel.pid, channel.partial[:MAX_RECORD_BYTES])
            channel.partial = channel.partial[MAX_RECORD_BYTES:]

    def _flush_partial(self, channel: _Channel) -> None:
        if channel.partial:
            self._on_output(channel.pid, channel.partial)
            channel.partial = b""

    def _refill(self) -> None:
        now = self._clock()
        budget = self._budget
        self._tokens = min(
            budget.burst_bytes, self._tokens + (now - self._refilled) * budget.rate_bytes_per_s
        )
        self._refilled = now

    def _pause(self, wait_s: float) -> None:
        loop = self._loop
        if loop is None:
            return
        for fd in self._channels:
            loop.remove_reader(fd)
        self.throttled_s += wait_s
        self._paused = loop.call_later(wait_s, self._resume)
        if self._on_throttle is not None:
            self._on_throttle(wait_s)

    def _resume(self) -> None:
        self._paused = None
        loop = self._loop
        if loop is None:
            return
        self._refill()
        for fd, channel in self._channels.items():
            loop.add_reader(fd, self._on_readable, channel)
