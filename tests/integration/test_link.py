"""The agent link (``agent.link``) over real loopback TCP connections: the handshake both
ways, frames delivered whole and in order, and the peers it refuses and drops. The far end
is either another ``LinkProtocol`` or a raw socket that speaks the wire format as the
module docstring writes it down (so a change of the format fails here).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from corral.agent import link
from corral.agent.link import Kind, LinkError, LinkProtocol, Role
from tests.helpers import eventually

SECRET = b"the-cluster-secret"
GREETING = b"CORRAL-LINK-1"
Frame = tuple[Kind, dict[str, Any], bytes]


def proof(secret: bytes, who: bytes, nonce: bytes) -> bytes:
    return hmac.new(secret, who + nonce, hashlib.sha256).digest()


def frame(kind: int, meta: bytes, body: bytes = b"") -> bytes:
    """One frame as the wire format says: u32 rest | u8 kind | u32 meta length | meta | body."""
    return struct.pack("!IBI", 1 + 4 + len(meta) + len(body), kind, len(meta)) + meta + body


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any], bytes]:
    size, kind, meta_len = struct.unpack("!IBI", await reader.readexactly(9))
    rest = await reader.readexactly(size - 5)
    return kind, json.loads(rest[:meta_len]), rest[meta_len:]


@dataclasses.dataclass
class Listening:
    """A server end of the link on 127.0.0.1: the links it accepted, the frames they got."""

    port: int
    links: list[LinkProtocol]
    frames: list[Frame]

    @property
    def link(self) -> LinkProtocol:
        assert len(self.links) == 1, self.links
        return self.links[0]

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A raw connection to it; the caller speaks the protocol (or not)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        await eventually(lambda: len(self.links) == 1)
        return reader, writer


@pytest_asyncio.fixture
async def listening() -> AsyncIterator[Listening]:
    loop = asyncio.get_running_loop()
    links: list[LinkProtocol] = []
    frames: list[Frame] = []

    def accept() -> LinkProtocol:
        accepted = LinkProtocol(Role.SERVER, SECRET, lambda *f: frames.append(f))
        links.append(accepted)
        return accepted

    server = await loop.create_server(accept, "127.0.0.1", 0)
    yield Listening(server.sockets[0].getsockname()[1], links, frames)
    server.close()
    for accepted in links:
        accepted.close()
        await asyncio.wait_for(accepted.closed, 5)
    await server.wait_closed()


async def authenticate_as_agent(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: bytes = SECRET
) -> None:
    """The agent's side of the handshake, checking the server's proof on the way."""
    ours = os.urandom(16)
    writer.write(GREETING + ours)
    answer = await reader.readexactly(32 + 16)
    assert answer[:32] == proof(SECRET, b"server", ours)  # the server knows the secret
    writer.write(proof(secret, b"agent", answer[32:]))
    await writer.drain()


async def closed_by_peer(reader: asyncio.StreamReader) -> bytes:
    """Everything the peer sent before it closed the connection (fails if it does not)."""
    return await asyncio.wait_for(reader.read(), 5)


async def refusal(future: Awaitable[None]) -> str:
    with pytest.raises(LinkError) as refused:
        await asyncio.wait_for(future, 5)
    return str(refused.value)


@pytest.mark.asyncio
async def test_a_server_and_an_agent_with_one_secret_exchange_frames_in_order() -> None:
    loop = asyncio.get_running_loop()
    at_server: list[Frame] = []
    at_agent: list[Frame] = []
    accepted: list[LinkProtocol] = []

    def accept() -> LinkProtocol:
        accepted.append(LinkProtocol(Role.SERVER, SECRET, lambda *f: at_server.append(f)))
        return accepted[-1]

    server = await loop.create_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, agent = await loop.create_connection(
        lambda: LinkProtocol(Role.AGENT, SECRET, lambda *f: at_agent.append(f)), "127.0.0.1", port
    )
    await asyncio.wait_for(agent.authenticated, 5)
    await eventually(lambda: accepted and accepted[0].alive)
    assert agent.alive and agent.peer == f"127.0.0.1:{port}"

    assert accepted[0].send_many(
        [(Kind.LAUNCH, {"id": "e1"}, b""), (Kind.DISPATCH, {"e": "e1"}, b"payload")]
    )
    assert agent.send(Kind.READY, {"id": "e1", "pid": 7})
    await eventually(lambda: len(at_agent) == 2 and len(at_server) == 1)
    assert at_agent == [(Kind.LAUNCH, {"id": "e1"}, b""), (Kind.DISPATCH, {"e": "e1"}, b"payload")]
    assert at_server == [(Kind.READY, {"id": "e1", "pid": 7}, b"")]

    agent.close()
    await asyncio.wait_for(asyncio.gather(agent.closed, accepted[0].closed), 5)
    assert not agent.alive and not accepted[0].alive
    assert not agent.send(Kind.READY, {"id": "e2"})  # a closed link sends nothing
    assert not accepted[0].send(Kind.STOP, {"id": "e1", "reason": "x"})
    server.close()
    await server.wait_closed()


@pytest.mark.asyncio
async def test_a_frame_larger_than_one_read_arrives_whole(listening: Listening) -> None:
    reader, writer = await listening.connect()
    await authenticate_as_agent(reader, writer)
    zip_bytes = os.urandom(3 * 1024 * 1024)  # many reads of the socket
    writer.write(frame(Kind.CODE, b'{"sha256":"ab"}', zip_bytes) + frame(Kind.RESET, b""))
    await writer.drain()
    await eventually(lambda: len(listening.frames) == 2)
    assert listening.frames == [(Kind.CODE, {"sha256": "ab"}, zip_bytes), (Kind.RESET, {}, b"")]
    # And the other way: what the server sends is a frame of the documented format.
    assert listening.link.send(Kind.STOP, {"id": "e1", "reason": "bye"}, b"x")
    assert await read_frame(reader) == (Kind.STOP, {"id": "e1", "reason": "bye"}, b"x")
    writer.close()
    await asyncio.wait_for(listening.link.closed, 5)


@pytest.mark.asyncio
async def test_a_peer_that_is_not_a_corral_agent_is_refused_without_an_answer(
    listening: Listening,
) -> None:
    reader, writer = await listening.connect()
    writer.write(b"GET / HTTP/1.1\r\nHost: corral.internal\r\n\r\n")
    assert await closed_by_peer(reader) == b""  # not even the server's proof
    assert await refusal(listening.link.authenticated) == "not a Corral agent"
    assert listening.link.closed.done() and not listening.link.alive
    writer.close()


@pytest.mark.asyncio
async def test_an_agent_without_the_secret_is_refused_and_its_frames_are_never_read(
    listening: Listening,
) -> None:
    reader, writer = await listening.connect()
    ours = os.urandom(16)
    writer.write(GREETING + ours)
    answer = await reader.readexactly(48)
    # A wrong proof, and a frame behind it in the same write.
    writer.write(proof(b"a guess", b"agent", answer[32:]) + frame(Kind.READY, b'{"id":"e"}'))
    assert await closed_by_peer(reader) == b""
    why = await refusal(listening.link.authenticated)
    assert why == "the agent does not know the cluster secret"
    assert listening.frames == []
    writer.close()


@pytest.mark.asyncio
async def test_a_peer_that_stalls_in_the_handshake_is_dropped_when_its_time_is_up(
    listening: Listening, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link, "HANDSHAKE_TIMEOUT_S", 0.2)
    reader, writer = await listening.connect()
    writer.write(GREETING[:5])  # half a greeting, then nothing
    assert await closed_by_peer(reader) == b""
    assert await refusal(listening.link.authenticated) == "no handshake in time"
    writer.close()


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(struct.pack("!IBI", link.MAX_FRAME_BYTES + 1, Kind.CODE, 2), id="oversized"),
        pytest.param(struct.pack("!IBI", 20, Kind.READY, 21) + b"x" * 15, id="meta-past-end"),
        pytest.param(frame(Kind.READY, b"{not json"), id="meta-not-json"),
        pytest.param(frame(99, b"{}"), id="unknown-kind"),
    ],
)
@pytest.mark.asyncio
async def test_a_malformed_frame_closes_the_link_after_the_frames_before_it(
    listening: Listening, bad: bytes
) -> None:
    reader, writer = await listening.connect()
    await authenticate_as_agent(reader, writer)
    writer.write(frame(Kind.USAGE, b'{"u":{}}') + bad + frame(Kind.READY, b'{"id":"e"}'))
    assert await closed_by_peer(reader) == b""
    assert listening.frames == [(Kind.USAGE, {"u": {}}, b"")]
    assert listening.link.authenticated.exception() is None  # the handshake itself was good
    assert not listening.link.alive
    assert not listening.link.send(Kind.STOP, {"id": "e", "reason": "x"})
    writer.close()


async def raw_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.asyncio
async def test_an_agent_proves_itself_only_to_a_server_that_proved_itself_first() -> None:
    loop = asyncio.get_running_loop()
    heard: asyncio.Future[bytes] = loop.create_future()

    async def server_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        greeting = await reader.readexactly(len(GREETING) + 16)
        assert greeting.startswith(GREETING)
        ours = os.urandom(16)
        # The proof in two writes: the agent waits for all of it.
        answer = proof(SECRET, b"server", greeting[len(GREETING) :]) + ours
        writer.write(answer[:20])
        await writer.drain()
        writer.write(answer[20:])
        agents = await reader.readexactly(32)
        heard.set_result(agents if agents == proof(SECRET, b"agent", ours) else b"wrong proof")
        writer.write(frame(Kind.HELLO, b'{"region":"us-east-1"}'))
        await reader.read()
        writer.close()

    server, port = await raw_server(server_side)
    frames: list[Frame] = []
    _, agent = await loop.create_connection(
        lambda: LinkProtocol(Role.AGENT, SECRET, lambda *f: frames.append(f)), "127.0.0.1", port
    )
    await asyncio.wait_for(agent.authenticated, 5)
    assert await asyncio.wait_for(heard, 5) != b"wrong proof"
    await eventually(lambda: frames == [(Kind.HELLO, {"region": "us-east-1"}, b"")])
    agent.close()
    await asyncio.wait_for(agent.closed, 5)
    server.close()
    await server.wait_closed()


@pytest.mark.asyncio
async def test_an_agent_whose_server_hangs_up_mid_handshake_is_not_linked() -> None:
    loop = asyncio.get_running_loop()

    async def server_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(len(GREETING) + 16)
        writer.write(b"\x00" * 10)  # a third of a proof
        await writer.drain()
        writer.close()

    server, port = await raw_server(server_side)
    _, agent = await loop.create_connection(
        lambda: LinkProtocol(Role.AGENT, SECRET, lambda *f: None), "127.0.0.1", port
    )
    assert (await refusal(agent.authenticated)).startswith("connection lost")
    await asyncio.wait_for(agent.closed, 5)
    assert not agent.alive and not agent.send(Kind.READY, {"id": "e"})
    server.close()
    await server.wait_closed()


@pytest.mark.asyncio
async def test_a_link_that_never_connected_sends_nothing_and_closes_quietly() -> None:
    never = LinkProtocol(Role.SERVER, SECRET, lambda *f: None)
    assert not never.alive
    assert not never.send(Kind.RESET, {})
    never.close()
    assert not never.closed.done()
