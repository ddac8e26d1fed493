"""Where runtime output arrives: the log socket and the runtime's own stdout/stderr.

In Managed Instances mode every awslambdaric worker connects twice to the Unix socket named
by ``_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET`` and ``dup2``s the connections onto its
stdout and stderr (``LMI_FACTS.md`` §3.3). The runtime's main process writes to a socket pair
created at spawn. Each channel knows the pid at its other end (``SO_PEERCRED``), which is
how a plain ``print()`` line is attributed to the request its worker is running.

``drain(pid)`` reads whatever that process has written so far, synchronously: the execution
environment calls it when the worker answers an invocation, so every line written before
the answer is attributed to that invocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import struct
from collections.abc import Callable
from pathlib import Path

__all__ = ["LogChannels", "MAX_RECORD_BYTES"]

# CloudWatch's largest event; a longer line is split.
MAX_RECORD_BYTES = 256 * 1024
_READ_SIZE = 65536

RecordCallback = Callable[[int | None, str, bytes], None]


class _Channel:
    __slots__ = ("sock", "pid", "stream", "partial")

    def __init__(self, sock: socket.socket, pid: int | None, stream: str) -> None:
        self.sock = sock
        self.pid = pid
        self.stream = stream
        self.partial = b""


class LogChannels:
    """All output channels of one execution environment."""

    def __init__(self, on_record: RecordCallback) -> None:
        self._on_record = on_record
        self._listener: socket.socket | None = None
        self._channels: dict[int, _Channel] = {}
        self._by_pid: dict[int | None, list[_Channel]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def listen(self, path: Path) -> None:
        """Accept worker connections on the Unix socket ``path``."""
        self._loop = asyncio.get_running_loop()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(256)
        listener.setblocking(False)
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
        """Read everything ``pid`` has written so far and emit its complete lines."""
        channels = self._by_pid.get(pid)
        if not channels:
            return
        # One system call tells which of the channels hold data (usually none).
        ready, _, _ = select.select([c.sock for c in channels], [], [], 0)
        for channel in channels:
            if channel.sock in ready:
                self._read(channel)

    def close(self) -> None:
        """Read what is left, emit unfinished lines, and close every channel."""
        if self._listener is not None and self._loop is not None:
            self._loop.remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        for channel in list(self._channels.values()):
            self._read(channel)
            if channel.partial:
                self._on_record(channel.pid, channel.stream, channel.partial)
                channel.partial = b""
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
        loop.add_reader(sock.fileno(), self._read, channel)

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

    def _read(self, channel: _Channel) -> None:
        while True:
            try:
                data = channel.sock.recv(_READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                if channel.partial:
                    self._on_record(channel.pid, channel.stream, channel.partial)
                    channel.partial = b""
                self._remove(channel)
                return
            self._split(channel, data)
            if len(data) < _READ_SIZE:
                return

    def _split(self, channel: _Channel, data: bytes) -> None:
        buffer = channel.partial + data if channel.partial else data
        lines = buffer.split(b"\n")
        channel.partial = lines.pop()
        for line in lines:
            self._on_record(channel.pid, channel.stream, line)
        while len(channel.partial) > MAX_RECORD_BYTES:
            self._on_record(channel.pid, channel.stream, channel.partial[:MAX_RECORD_BYTES])
            channel.partial = channel.partial[MAX_RECORD_BYTES:]
