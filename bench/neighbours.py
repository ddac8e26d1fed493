"""Noisy neighbours: a quiet function's invoke latency while other functions print as fast
as they can, against the same invoke with them idle, in the same run.

One ``corral serve`` (``--auth none``: only logging is compared) serves a quiet classic
function (a JSON echo) and up to three chatty classic functions. Each scenario runs the
chatty ones for ``--seconds`` (each in its own execution environment, invoked once and
looping until its time is up) while one client invokes the quiet function back to back and
another reads ``GET /health`` every 20 ms; the server's memory (RSS, the log writer process
excluded) is sampled every half second. Chatty kinds:

* ``print``: ``print()`` of a short line in a tight loop;
* ``block``: ``sys.stdout.write`` of 64 KB lines in a tight loop.

Scenarios: 1 and 3 neighbours of each kind, each right after an idle run of the same length
(this shared machine drifts from one minute to the next), for ``--rounds`` rounds. The
quiet p50 and ``/health`` p50 of each loaded run are divided by those of its idle run, and
the median ratio over the rounds is the result (targets on a 2-core machine: one neighbour
at most 1.5x, three at most 2.5x). The server's RSS is reported before, at its peak, and
after each run.

Run:  .venv/bin/python -m bench.neighbours [--seconds 8] [--rounds 3]
Writes the numbers to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from tests.helpers import ROLE, Server, start_server, zip_code

HERE = Path(__file__).parent
QUIET = "def handler(event, context):\n    return event\n"
CHATTY = """
import sys, time

def handler(event, context):
    end = time.time() + event["seconds"]
    n = 0
    if event["kind"] == "block":
        block = "x" * 65535 + "\\n"
        while time.time() < end:
            sys.stdout.write(block)
            n += 1
    else:
        while time.time() < end:
            print("chatty line number", n)
            n += 1
    return n
"""
SCENARIOS: list[tuple[str, int]] = [
    ("print", 1),
    ("block", 1),
    ("print", 3),
    ("block", 3),
]


def invoke_url(server: Server, name: str) -> str:
    return f"{server.url}/2015-03-31/functions/{name}/invocations"


def deploy(server: Server) -> None:
    lam = server.client()
    lam.create_function(
        FunctionName="quiet",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_code({"app.py": QUIET})},
    )
    for index in range(3):
        lam.create_function(
            FunctionName=f"chatty-{index}",
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": zip_code({"app.py": CHATTY})},
            Timeout=900,
        )


def server_rss(server: Server) -> int:
    """The server process's resident memory (its children, the log writer and the
    runtimes, are not counted)."""
    return int(psutil.Process(server.proc.pid).memory_info().rss)


def scenario(server: Server, kind: str, neighbours: int, seconds: float) -> dict[str, Any]:
    """Run the chatty functions and measure the quiet one meanwhile."""
    client = httpx.Client(timeout=120)
    stop = threading.Event()
    chatty_done: list[float] = []

    def chatty(index: int) -> None:
        started = time.monotonic()
        response = httpx.post(
            invoke_url(server, f"chatty-{index}"),
            json={"seconds": seconds, "kind": kind},
            timeout=seconds + 120,
        )
        response.raise_for_status()
        chatty_done.append(time.monotonic() - started)

    health: list[float] = []

    def probe_health() -> None:
        with httpx.Client(timeout=30) as probe:
            while not stop.is_set():
                started = time.perf_counter()
                probe.get(f"{server.url}/health").raise_for_status()
                health.append(time.perf_counter() - started)
                time.sleep(0.02)

    rss: list[int] = []

    def sample_rss() -> None:
        while not stop.is_set():
            rss.append(server_rss(server))
            time.sleep(0.5)

    threads = [threading.Thread(target=chatty, args=(i,)) for i in range(neighbours)]
    helpers = [threading.Thread(target=probe_health), threading.Thread(target=sample_rss)]
    rss_before = server_rss(server)
    for thread in threads + helpers:
        thread.start()
    time.sleep(1.0 if neighbours else 0.0)  # let the neighbours get going
    latencies: list[float] = []
    deadline = time.monotonic() + (seconds - 2.0 if neighbours else seconds)
    url = invoke_url(server, "quiet")
    while time.monotonic() < deadline:
        started = time.perf_counter()
        client.post(url, content=b'{"n": 1}').raise_for_status()
        latencies.append(time.perf_counter() - started)
    for thread in threads:
        thread.join()
    stop.set()
    for thread in helpers:
        thread.join()
    client.close()
    time.sleep(1.0)
    return {
        "kind": kind,
        "neighbours": neighbours,
        "invokes": len(latencies),
        "quiet_p50_ms": 1000 * statistics.median(latencies),
        "quiet_p99_ms": 1000 * sorted(latencies)[int(0.99 * (len(latencies) - 1))],
        "health_p50_ms": 1000 * statistics.median(health),
        "health_p99_ms": 1000 * sorted(health)[int(0.99 * (len(health) - 1))],
        "rss_before_mb": rss_before / 2**20,
        "rss_peak_mb": max(rss, default=rss_before) / 2**20,
        "rss_after_mb": server_rss(server) / 2**20,
        "chatty_s": chatty_done,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    server = start_server(data / "corral", CORRAL_LOG_LEVEL="warning", CORRAL_AUTH="none")
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    try:
        deploy(server)
        # Warm every function (classic: a cold start each), then measure.
        httpx.post(invoke_url(server, "quiet"), content=b"{}", timeout=60).raise_for_status()
        for index in range(3):
            httpx.post(
                invoke_url(server, f"chatty-{index}"),
                json={"seconds": 0.1, "kind": "print"},
                timeout=60,
            ).raise_for_status()
        scenario(server, "idle", 0, 2.0)  # the first seconds of a server are slower
        for _ in range(args.rounds):
            for kind, neighbours in SCENARIOS:
                idle = scenario(server, "idle", 0, args.seconds)
                loaded = scenario(server, kind, neighbours, args.seconds)
                pairs.append((idle, loaded))
                show(idle)
                show(loaded)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    report(pairs, args)


def show(result: dict[str, Any]) -> None:
    print(
        f"{result['kind']:6} x{result['neighbours']}: quiet p50 {result['quiet_p50_ms']:7.2f} ms "
        f"(p99 {result['quiet_p99_ms']:7.2f}), /health p50 {result['health_p50_ms']:6.2f} ms, "
        f"server RSS {result['rss_before_mb']:.0f} -> peak {result['rss_peak_mb']:.0f} -> "
        f"{result['rss_after_mb']:.0f} MB",
        flush=True,
    )


def report(pairs: list[tuple[dict[str, Any], dict[str, Any]]], args: argparse.Namespace) -> None:
    print(
        f"\nmedian ratios against the idle run just before ({args.rounds} rounds, "
        f"{args.seconds:g} s a run):"
    )
    print(f"{'scenario':10} {'quiet p50':>10} {'/health p50':>12} {'target':>7} {'peak RSS':>9}")
    summary: dict[str, dict[str, float]] = {}
    for kind, neighbours in SCENARIOS:
        mine = [(i, x) for i, x in pairs if (x["kind"], x["neighbours"]) == (kind, neighbours)]
        label = f"{kind} x{neighbours}"
        quiet = statistics.median(x["quiet_p50_ms"] / i["quiet_p50_ms"] for i, x in mine)
        health = statistics.median(x["health_p50_ms"] / i["health_p50_ms"] for i, x in mine)
        peak = max(x["rss_peak_mb"] for _, x in mine)
        target = 1.5 if neighbours == 1 else 2.5
        summary[label] = {
            "quiet_ratio": quiet,
            "health_ratio": health,
            "target": target,
            "rss_peak_mb": peak,
        }
        print(f"{label:10} {quiet:>9.2f}x {health:>11.2f}x {target:>6.1f}x {peak:>6.0f} MB")
    first = pairs[0][0]["rss_before_mb"]
    last = pairs[-1][1]["rss_after_mb"]
    print(f"server RSS: {first:.0f} MB at the first run, {last:.0f} MB after the last")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"neighbours-{stamp}.json").write_text(
        json.dumps(
            {
                "seconds": args.seconds,
                "rounds": args.rounds,
                "cpus": os.cpu_count(),
                "summary": summary,
                "pairs": pairs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
