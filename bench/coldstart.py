"""Cold start of a classic hello-world function: container sandbox, process sandbox, and a
bare spawn of the runtime, in one run.

* ``bare``: ``python -m awslambdaric`` spawned against a minimal Runtime API in this
  process; time from the spawn to the function's answer (the floor: interpreter start,
  awslambdaric import, handler import, one invocation).
* ``process`` and ``container``: a Corral server with that sandbox; time of a boto3
  ``Invoke`` of a function that has no environment yet (created just before, deleted
  after), as a user sees it: API, environment start, runtime init, invocation.

The ratio ``container / bare`` is the issue's target (at most 2.5x). Medians of ``--runs``
cold starts per mode, modes interleaved so that drift in the machine hits them alike.

Run:  .venv/bin/python -m bench.coldstart [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from tests.helpers import ROLE, Server, start_server, zip_code

from corral.core.settings import default_runtimes_dir
from corral.sandbox.interpreters import RuntimeRegistry

HERE = Path(__file__).parent
HELLO = "def handler(event, context):\n    return {'hello': 'world'}\n"
RUNTIME: Final = "python3.11"


async def bare_once(python: Path, code_dir: Path) -> float:
    """Spawn awslambdaric against a one-invocation Runtime API; seconds until it answers."""
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[float] = loop.create_future()
    served = False

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await serve(reader, writer)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        while True:
            line = await reader.readline()
            if not line:
                return
            length = 0
            while (header := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = header.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            if b"/next" in line:
                if served:
                    await asyncio.Event().wait()  # one invocation only
                served = True
                deadline = int(time.time() * 1000) + 60_000
                writer.write(
                    b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r1\r\n"
                    b"Lambda-Runtime-Deadline-Ms: %d\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 2\r\n\r\n{}" % deadline
                )
            else:
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                if not answered.done():
                    answered.set_result(time.perf_counter())
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = {
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "_HANDLER": "app.handler",
        "LAMBDA_TASK_ROOT": str(code_dir),
        "PYTHONPATH": str(code_dir),
        "PATH": "/usr/bin:/bin",
    }
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        str(python), "-m", "awslambdaric", "app.handler", env=env, cwd=str(code_dir)
    )
    try:
        done = await asyncio.wait_for(answered, 30)
    finally:
        proc.kill()
        await proc.wait()
        server.close()
    return done - started


def corral_once(server: Server, index: int) -> float:
    lam = server.client()
    name = f"cold-{index}"
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_code({"app.py": HELLO})},
    )
    try:
        started = time.perf_counter()
        response = lam.invoke(FunctionName=name, Payload=b"{}")
        elapsed = time.perf_counter() - started
        assert "FunctionError" not in response, response["Payload"].read()
        return elapsed
    finally:
        lam.delete_function(FunctionName=name)


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p10_ms": round(ordered[len(ordered) // 10] * 1000, 1),
        "p90_ms": round(ordered[(len(ordered) * 9) // 10] * 1000, 1),
        "runs": len(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    interpreter = RuntimeRegistry(default_runtimes_dir(os.environ)).available()[RUNTIME]
    work = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    code_dir = work / "code"
    code_dir.mkdir()
    (code_dir / "app.py").write_text(HELLO)
    servers = {
        sandbox: start_server(work / sandbox, CORRAL_SANDBOX=sandbox, CORRAL_LOG_LEVEL="warning")
        for sandbox in ("process", "container")
    }
    samples: dict[str, list[float]] = {"bare": [], "process": [], "container": []}
    try:
        for server in servers.values():  # warm the page cache and the servers
            corral_once(server, -1)
        asyncio.run(bare_once(interpreter.executable, code_dir))
        for index in range(args.runs):
            samples["bare"].append(asyncio.run(bare_once(interpreter.executable, code_dir)))
            for name, server in servers.items():
                samples[name].append(corral_once(server, index))
    finally:
        for server in servers.values():
            server.stop()
    results: dict[str, Any] = {mode: summary(values) for mode, values in samples.items()}
    bare = results["bare"]["median_ms"]
    for mode in ("process", "container"):
        results[mode]["vs_bare"] = round(results[mode]["median_ms"] / bare, 2)
    results["target"] = "container median at most 2.5x bare"
    results["met"] = results["container"]["vs_bare"] <= 2.5
    print(f"{'mode':<10} {'median ms':>10} {'p10':>8} {'p90':>8} {'x bare':>8}")
    for mode in ("bare", "process", "container"):
        row = results[mode]
        print(
            f"{mode:<10} {row['median_ms']:>10} {row['p10_ms']:>8} {row['p90_ms']:>8} "
            f"{row.get('vs_bare', 1.0):>8}"
        )
    print(f"target: {results['target']}: {'met' if results['met'] else 'NOT met'}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"coldstart-{stamp}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
