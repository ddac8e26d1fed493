"""The link between the Corral server and the agent of a remote instance: one TCP connection,
authenticated both ways, carrying small framed messages.

The invoke path crosses it twice (an invocation out, its result back), so it is a plain
``asyncio.Protocol`` over TCP, not HTTP and not Ray: a frame costs a few microseconds to
build and parse.

Handshake (both sides know the cluster secret; neither sends it)::

    agent  -> server   b"CORRAL-LINK-1" + 16 random bytes (a)
    server -> agent    HMAC-SHA256(secret, b"server" + a) + 16 random bytes (s)
    agent  -> server   HMAC-SHA256(secret, b"agent" + s)

Each side closes the connection at once if the other's proof is wrong or late, so a process
that does not know the secret can neither send work to an agent nor receive any. The link
is not encrypted: run the cluster on a private network (``docs/ray.md``).

Frames, after the handshake::

    u32 length of the rest | u8 kind | u32 length of meta | meta (JSON object) | body (bytes)

``meta`` carries the small fields, ``body`` the bulk (a payload, a zip, a block of logs) as
it is, never encoded again. Frames that belong together (an invocation's log records and
its result) leave in one write (``send_many``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import struct
from collections.abc import Callable
from enum import IntEnum
from typing import Any, cast

__all__ = ["Kind", "LinkError", "LinkProtocol", "Role", "MAX_FRAME_BYTES"]

_GREETING = b"CORRAL-LINK-1"
_NONCE = 16
_PROOF = 32
_HEAD = struct.Struct("!IBI")
# The largest frame: a function's zip (70 MB request, 50 MB zip) with room to spare.
MAX_FRAME_BYTES = 80 * 1024 * 1024
HANDSHAKE_TIMEOUT_S = 10.0


class Kind(IntEnum):
    """What a frame says."""

    # server -> agent
    HELLO = 1  # the settings environments run with
    LAUNCH = 2  # start an environment
    DISPATCH = 3  # an invocation for an environment
    DRAIN = 4  # stop taking invocations, finish, stop
    STOP = 5  # stop now
    CODE = 6  # a function's zip, answering FETCH_CODE
    RESET = 7  # stop every environment (a server that starts again)
    # agent -> server
    READY = 20  # an environment's runtime is initialised
    ENDED = 21  # an environment ended (with its failure, if any)
    RESULT = 22  # an invocation's result
    RELEASED = 23  # an invocation's slot is free again (its runtime answered)
    USAGE = 24  # CPU and memory of every environment, once a second
    LOGS = 25  # log records
    FETCH_CODE = 26  # please send this zip


class Role(IntEnum):
    SERVER = 1
    AGENT = 2


class LinkError(Exception):
    """The link could not be set up, or broke."""


FrameHandler = Callable[[Kind, dict[str, Any], bytes], None]


class LinkProtocol(asyncio.Protocol):
    """One end of a link: the handshake, then frames to ``on_frame``.

    ``authenticated`` resolves once the handshake succeeded (with an exception if it
    failed); ``closed`` resolves when the connection ends, for whatever reason.
    """

    def __init__(self, role: Role, secret: bytes, on_frame: FrameHandler) -> None:
        self._role = role
        self._secret = secret
        self._on_frame = on_frame
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._step = 0
        self._nonce = b""
        loop = asyncio.get_running_loop()
        self.authenticated: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self.peer = ""

    # asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._timer = asyncio.get_running_loop().call_later(
            HANDSHAKE_TIMEOUT_S, self._fail, "no handshake in time"
        )
        if self._role is Role.AGENT:
            self._nonce = os.urandom(_NONCE)
            self._transport.write(_GREETING + self._nonce)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self.authenticated.done():
            self.authenticated.set_exception(LinkError(f"connection lost: {exc or 'closed'}"))
            self.authenticated.exception()
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._step < 2 and not self._handshake():
            return
        self._frames()

    # sending ----------------------------------------------------------------------------
    def send(self, kind: Kind, meta: dict[str, Any], body: bytes = b"") -> bool:
        """Send one frame; False if the link is down."""
        return self.send_many([(kind, meta, body)])

    def send_many(self, frames: list[tuple[Kind, dict[str, Any], bytes]]) -> bool:
        """Send frames in one write; False if the link is down."""
        transport = self._transport
        if transport is None or transport.is_closing() or not self.authenticated.done():
            return False
        parts: list[bytes] = []
        for kind, meta, body in frames:
            encoded = json.dumps(meta, separators=(",", ":")).encode()
            parts.append(_HEAD.pack(1 + 4 + len(encoded) + len(body), kind, len(encoded)))
            parts.append(encoded)
            if body:
                parts.append(body)
        transport.write(b"".join(parts))
        return True

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    @property
    def alive(self) -> bool:
        return (
            self._transport is not None
            and not self._transport.is_closing()
            and self.authenticated.done()
            and self.authenticated.exception() is None
        )

    # internals --------------------------------------------------------------------------
    def _handshake(self) -> bool:
        """Advance the handshake with what arrived; True once it is complete."""
        transport = self._transport
        assert transport is not None
        if self._role is Role.SERVER:
            if self._step == 0:
                if len(self._buffer) < len(_GREETING) + _NONCE:
                    return False
                if bytes(self._buffer[: len(_GREETING)]) != _GREETING:
                    self._fail("not a Corral agent")
                    return False
                theirs = bytes(self._buffer[len(_GREETING) : len(_GREETING) + _NONCE])
                del self._buffer[: len(_GREETING) + _NONCE]
                self._nonce = os.urandom(_NONCE)
                transport.write(self._proof(b"server", theirs) + self._nonce)
                self._step = 1
            if len(self._buffer) < _PROOF:
                return False
            if not hmac.compare_digest(
                bytes(self._buffer[:_PROOF]), self._proof(b"agent", self._nonce)
            ):
                self._fail("the agent does not know the cluster secret")
                return False
            del self._buffer[:_PROOF]
        else:
            if len(self._buffer) < _PROOF + _NONCE:
                return False
            if not hmac.compare_digest(
                bytes(self._buffer[:_PROOF]), self._proof(b"server", self._nonce)
            ):
                self._fail("the server does not know the cluster secret")
                return False
            theirs = bytes(self._buffer[_PROOF : _PROOF + _NONCE])
            del self._buffer[: _PROOF + _NONCE]
            transport.write(self._proof(b"agent", theirs))
        self._step = 2
        if self._timer is not None:
            self._timer.cancel()
        if not self.authenticated.done():
            self.authenticated.set_result(None)
        return True

    def _proof(self, who: bytes, nonce: bytes) -> bytes:
        return hmac.new(self._secret, who + nonce, hashlib.sha256).digest()

    def _frames(self) -> None:
        buffer = self._buffer
        head = _HEAD.size
        while len(buffer) >= head:
            size, kind, meta_len = _HEAD.unpack_from(buffer)
            if size > MAX_FRAME_BYTES or meta_len > size:
                self._fail(f"a frame of {size} bytes")
                return
            if len(buffer) < 4 + size:
                return
            meta_end = head + meta_len
            try:
                meta = json.loads(bytes(buffer[head:meta_end])) if meta_len else {}
                frame_kind = Kind(kind)
            except ValueError:
                self._fail("a malformed frame")
                return
            body = bytes(buffer[meta_end : 4 + size])
            del buffer[: 4 + size]
            self._on_frame(frame_kind, meta, body)

    def _fail(self, why: str) -> None:
        if not self.authenticated.done():
            self.authenticated.set_exception(LinkError(why))
            self.authenticated.exception()
        if self._transport is not None:
            self._transport.close()
