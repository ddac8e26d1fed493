"""Warm-invoke throughput and latency: Corral against references measured in the same run.

* ``bare``: a bare uvicorn ASGI app echoing the body (the issue's reference).
* ``minimal-hop``: the least code that puts awslambdaric behind HTTP (``bench/minimal_hop.py``):
  what any design with the real runtime client pays, whatever the rest does.
* ``corral``: ``corral serve`` with a published Managed Instances function, 3 execution
  environments x 4 slots, a JSON echo handler under the real awslambdaric.
* ``corral-console`` (``--console``): the same server while two web console tabs are open on
  it (logged in; the overview's and the function page's live streams read every second).

Load comes from ``wrk`` (one thread). 1 client measures latency. 32 clients measure
throughput of *successful* invocations: 32 clients on 12 slots means about 20 are throttled
(429) at any time, as on AWS; each throttled client waits ``--backoff-ms`` before it tries
again, as an SDK backs off (boto3 waits far longer, up to seconds).

Run:  .venv/bin/python -m bench.invoke [--seconds 10] [--runtime python3.11] [--backoff-ms 10]
Writes the numbers to bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from tests.helpers import (
    OPERATOR,
    ROLE,
    SUBNETS,
    Server,
    sign,
    start_server,
    wait_version_active,
    zip_code,
)

HERE = Path(__file__).parent
ECHO = "def handler(event, context):\n    return event\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


BODY = b'{"message": "hello", "n": 42, "items": [1, 2, 3]}'  # as bench/wrk_post.lua sends


def signed(url: str, key: tuple[str, str]) -> list[str]:
    """Headers (for ``wrk``) that sign the benchmark's request to ``url`` with ``key``."""
    host = urllib.parse.urlsplit(url).netloc
    headers = sign("POST", url, BODY, {"Content-Type": "application/json", "Host": host}, key)
    return [f"{name}: {value}" for name, value in headers.items()]


def wrk(
    url: str,
    connections: int,
    seconds: float,
    backoff_ms: int = 0,
    key: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Load ``url`` with ``wrk``; requests are signed (afresh, for each run) by ``key``."""
    headers = signed(url, key) if key is not None else []
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--latency",
            "-s",
            str(HERE / "wrk_post.lua"),
            url,
            "--",
            str(backoff_ms),
            *headers,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    duration_s = result["duration_us"] / 1e6
    result["ok_per_s"] = result["ok"] / duration_s
    result["throttled_share"] = result["throttled"] / max(1, result["requests"])
    return result


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("a reference server exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("a reference server did not start")


def start_uvicorn(
    app: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--port",
            str(port),
            "--http",
            "httptools",
            "--loop",
            "uvloop",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=HERE.parent,
        env={**os.environ, **(env or {})},
    )
    wait_port(port, proc)
    return proc, f"http://127.0.0.1:{port}/2015-03-31/functions/echo/invocations"


def deploy(
    server: Server,
    runtime: Any,
    name: str = "echo",
    code: str = ECHO,
    environments: int | None = None,
) -> None:
    """A published Managed Instances function (2 GB, 4 slots per environment) on a new
    provider; ``environments`` pins its scaling (min = max) so runs compare."""
    from tests.helpers import pin_environments

    lam = server.client()
    provider = lam.create_capacity_provider(
        CapacityProviderName="bench", VpcConfig=SUBNETS, PermissionsConfig=OPERATOR
    )["CapacityProvider"]["CapacityProviderArn"]
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_code({"app.py": code})},
        MemorySize=2048,
        CapacityProviderConfig={
            "LambdaManagedInstancesCapacityProviderConfig": {
                "CapacityProviderArn": provider,
                "PerExecutionEnvironmentMaxConcurrency": 4,
            }
        },
        Publish=True,
    )
    if environments is not None:
        pin_environments(lam, name, environments)
    wait_version_active(lam, name, "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runtime", default="python3.11")
    parser.add_argument("--backoff-ms", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="1-client runs per target")
    parser.add_argument(
        "--console", action="store_true", help="also measure with web console tabs open"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk (scripts/bench installs it)")
    from corral.core.settings import Settings
    from corral.sandbox.interpreters import RuntimeRegistry

    interpreter = RuntimeRegistry(Settings.from_env().runtimes_dir).available()[args.runtime]
    data = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    code = data / "code"
    code.mkdir()
    (code / "app.py").write_text(ECHO)
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, dict[int, dict[str, Any]]] = {}
    corral = start_server(data / "corral", CORRAL_LOG_LEVEL="warning")
    open_corral = start_server(data / "open", CORRAL_LOG_LEVEL="warning", CORRAL_AUTH="none")
    try:
        bare, bare_url = start_uvicorn("bench.bare_app:app")
        hop, hop_url = start_uvicorn(
            "bench.minimal_hop:app",
            {"HOP_PYTHON": str(interpreter.executable), "HOP_CODE": str(code)},
        )
        procs += [bare, hop]
        path = "/2015-03-31/functions/echo/invocations?Qualifier=1"
        for server in (corral, open_corral):
            deploy(server, args.runtime, environments=3)  # 3 x 4 slots, as documented
        targets = {
            "bare": bare_url,
            "minimal-hop": hop_url,
            "corral": corral.url + path,
            "corral-open": open_corral.url + path,
        }
        if args.console:
            targets["corral-console"] = corral.url + path
        tabs = ConsoleTabs(corral)
        # Corral authenticates every call (the default): its requests are signed.
        keys = {name: None for name in targets} | {
            "corral": corral.admin_key,
            "corral-console": corral.admin_key,
        }
        for name, url in targets.items():
            wrk(url, 8, 2, key=keys[name])  # warm-up
        # Latency is noisy on a shared machine: interleave the targets over several rounds
        # and keep each target's median run.
        single: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, url in targets.items():
                with tabs.open(name == "corral-console"):
                    single[name].append(wrk(url, 1, args.seconds, key=keys[name]))
        for name, url in targets.items():
            runs = sorted(single[name], key=lambda r: r["p50_us"])
            with tabs.open(name == "corral-console"):
                many = wrk(url, 32, args.seconds, args.backoff_ms, key=keys[name])
            results[name] = {1: runs[len(runs) // 2], 32: many}
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
            proc.wait()
        corral.stop()
        open_corral.stop()
        shutil.rmtree(data, ignore_errors=True)
    report(results, args)


class ConsoleTabs:
    """Web console tabs on a server: logged in, reading the live streams of the overview and
    of the function's page, as two open browser tabs do."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self.updates = 0

    @contextlib.contextmanager
    def open(self, wanted: bool) -> Iterator[None]:
        if not wanted:
            yield
            return
        stop = threading.Event()
        key_id, secret = self._server.admin_key
        http = httpx.Client(base_url=self._server.url, timeout=30)
        http.post("/console/login", data={"access_key_id": key_id, "secret_access_key": secret})

        def tab(topic: str) -> None:
            with http.stream("GET", "/console/events", params={"topic": topic}) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        self.updates += 1
                    if stop.is_set():
                        return

        threads = [
            threading.Thread(target=tab, args=(topic,), daemon=True)
            for topic in ("overview", "function:echo")
        ]
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=5)
            http.close()


def report(results: dict[str, dict[int, dict[str, Any]]], args: argparse.Namespace) -> None:
    print(
        f"\nwarm invoke: {args.runtime}, 3 x 4 slots, JSON echo, wrk -t1, {args.seconds:g} s "
        f"per run; 1 client: median of {args.rounds} interleaved runs; 32 clients: "
        f"throttled clients back off {args.backoff_ms} ms"
    )
    print(f"{'target':12} {'clients':>7} {'ok req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'429 %':>6}")
    for name, runs in results.items():
        for connections, r in runs.items():
            print(
                f"{name:12} {connections:>7} {r['ok_per_s']:>9.0f} {r['p50_us'] / 1000:>8.3f} "
                f"{r['p99_us'] / 1000:>8.3f} {100 * r['throttled_share']:>6.1f}"
            )
    bare, hop, corral = results["bare"], results["minimal-hop"], results["corral"]
    opened = results["corral-open"]
    summary = {
        "signed_vs_open_32": corral[32]["ok_per_s"] / opened[32]["ok_per_s"],
        "signed_p50_minus_open_ms_1": (corral[1]["p50_us"] - opened[1]["p50_us"]) / 1000,
        "corral_vs_bare_32": corral[32]["ok_per_s"] / bare[32]["ok_per_s"],
        "hop_vs_bare_32": hop[32]["ok_per_s"] / bare[32]["ok_per_s"],
        "corral_p50_minus_bare_ms_1": (corral[1]["p50_us"] - bare[1]["p50_us"]) / 1000,
        "hop_p50_minus_bare_ms_1": (hop[1]["p50_us"] - bare[1]["p50_us"]) / 1000,
    }
    print(
        f"\n32 clients: corral/bare = {summary['corral_vs_bare_32']:.2f}x (target >= 0.25x); "
        f"minimal-hop/bare = {summary['hop_vs_bare_32']:.2f}x"
    )
    print(
        f" 1 client : corral p50 - bare p50 = {summary['corral_p50_minus_bare_ms_1']:+.3f} ms "
        f"(target <= +0.400 ms); minimal-hop: {summary['hop_p50_minus_bare_ms_1']:+.3f} ms"
    )
    if "corral-console" in results:
        tabbed = results["corral-console"]
        summary["console_vs_corral_32"] = tabbed[32]["ok_per_s"] / corral[32]["ok_per_s"]
        summary["console_p50_minus_corral_ms_1"] = (
            tabbed[1]["p50_us"] - corral[1]["p50_us"]
        ) / 1000
        print(
            f" two console tabs open vs none: 32 clients {summary['console_vs_corral_32']:.2f}x,"
            f" 1 client p50 {summary['console_p50_minus_corral_ms_1']:+.3f} ms"
        )
    print(
        f" SigV4 (corral) vs --auth none (corral-open): 32 clients "
        f"{summary['signed_vs_open_32']:.2f}x, 1 client p50 "
        f"{summary['signed_p50_minus_open_ms_1']:+.3f} ms"
    )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"invoke-{stamp}.json").write_text(
        json.dumps(
            {
                "runtime": args.runtime,
                "seconds": args.seconds,
                "backoff_ms": args.backoff_ms,
                "cpus": os.cpu_count(),
                "results": results,
                **summary,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
