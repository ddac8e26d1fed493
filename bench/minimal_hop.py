"""The floor: the least code that puts awslambdaric behind an HTTP endpoint.

A uvicorn ASGI app whose only route hands the body to an idle awslambdaric worker through
a bare-bones Runtime API (asyncio protocol over httptools) and returns the worker's answer;
429 when no worker is idle. No validation, no logs, no bookkeeping. Three runtimes of four
workers each, like the benchmark's Corral function. Environment: ``HOP_PYTHON`` (the
runtime's interpreter), ``HOP_CODE`` (the handler's directory).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import os
import time
import uuid
from typing import Any

import httptools

from bench.bare_app import read_body

_WORKERS = 4
_RUNTIMES = 3


class _Runtime:
    def __init__(self) -> None:
        self.idle: collections.deque[_Conn] = collections.deque()
        self.pending: dict[str, asyncio.Future[bytes]] = {}


class _Conn(asyncio.Protocol):
    def __init__(self, runtime: _Runtime) -> None:
        self.runtime = runtime
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.runtime.idle:
            self.runtime.idle.remove(self)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.url.endswith(b"/next"):
            self.runtime.idle.append(self)
            return
        request_id = self.url.split(b"/")[-2].decode()
        future = self.runtime.pending.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(b"".join(self.body))
        self.transport.write(
            b'HTTP/1.1 202 Accepted\r\nContent-Length: 16\r\n\r\n{"status":"OK"}\n'
        )

    def send(self, request_id: str, payload: bytes) -> None:
        deadline = int(time.time() * 1000) + 30000
        self.transport.write(
            (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Lambda-Runtime-Aws-Request-Id: {request_id}\r\n"
                f"Lambda-Runtime-Deadline-Ms: {deadline}\r\n"
                "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:"
                "function:echo\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            ).encode()
            + payload
        )


_runtimes: list[_Runtime] = []
_processes: list[asyncio.subprocess.Process] = []


async def _start() -> None:
    loop = asyncio.get_running_loop()
    for _ in range(_RUNTIMES):
        runtime = _Runtime()
        _runtimes.append(runtime)
        server = await loop.create_server(functools.partial(_Conn, runtime), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        env = {
            "PATH": "/usr/bin:/bin",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
            "AWS_LAMBDA_MAX_CONCURRENCY": str(_WORKERS),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        }
        process = await asyncio.create_subprocess_exec(
            os.environ["HOP_PYTHON"],
            "-m",
            "awslambdaric",
            "app.handler",
            cwd=os.environ["HOP_CODE"],
            env=env,
            start_new_session=True,
        )
        _processes.append(process)
    while sum(len(r.idle) for r in _runtimes) < _RUNTIMES * _WORKERS:
        await asyncio.sleep(0.05)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await _start()
                await send({"type": "lifespan.startup.complete"})
            else:
                for process in _processes:
                    os.killpg(process.pid, 9)
                    await process.wait()
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = await read_body(receive)
    runtime = next((r for r in _runtimes if r.idle), None)
    if runtime is None:
        await send({"type": "http.response.start", "status": 429, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
        return
    conn = runtime.idle.pop()
    request_id = str(uuid.uuid4())
    future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    runtime.pending[request_id] = future
    conn.send(request_id, body)
    result = await future
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(result)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": result})
