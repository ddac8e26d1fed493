"""What durable async events cost: Event invokes with ``CORRAL_DB_SYNC=full`` (each queued
event fsynced before the 202) against ``normal``, in the same run.

Two servers (``--auth none``) each serve one classic function that reserves no concurrency,
so the events wait in the queue (throttled, retried later) and what is measured is the 202
alone, not the function; each is sent ``--events`` Event invokes by 1 client, then by 16.
Prints the p50 latency of a 202 and 202s per second.

Run:  .venv/bin/python -m bench.durability [--events 400]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from tests.helpers import ROLE, start_server, zip_code

HANDLER = "def handler(event, context):\n    return 1\n"


def run(url: str, events: int, clients: int) -> tuple[float, float]:
    """(p50 seconds of a 202, 202s per second)."""
    latencies: list[float] = []

    def send(count: int) -> None:
        with httpx.Client(timeout=30) as http:
            for _ in range(count):
                started = time.perf_counter()
                answer = http.post(url, content=b"{}", headers={"X-Amz-Invocation-Type": "Event"})
                assert answer.status_code == 202, answer.text
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, [events // clients] * clients))
    elapsed = time.perf_counter() - started
    return statistics.median(latencies), len(latencies) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    args = parser.parse_args()
    data = Path(
        tempfile.mkdtemp(prefix="corral-bench-", dir="/work" if Path("/work").is_dir() else None)
    )
    servers = {
        mode: start_server(
            data / mode, CORRAL_AUTH="none", CORRAL_DB_SYNC=mode, CORRAL_LOG_LEVEL="warning"
        )
        for mode in ("full", "normal")
    }
    results: dict[str, dict[int, tuple[float, float]]] = {}
    try:
        for server in servers.values():
            lam = server.client()
            lam.create_function(
                FunctionName="sink",
                Runtime="python3.11",
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": zip_code({"app.py": HANDLER})},
            )
            lam.put_function_concurrency(FunctionName="sink", ReservedConcurrentExecutions=0)
        for clients in (1, 16):
            for mode, server in servers.items():
                url = f"{server.url}/2015-03-31/functions/sink/invocations"
                run(url, 32, 1)  # warm up
                results.setdefault(mode, {})[clients] = run(url, args.events, clients)
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(data, ignore_errors=True)
    print(f"\nEvent invokes ({args.events} per run): p50 of a 202, and 202s per second")
    for mode, by_clients in results.items():
        for clients, (p50, rate) in by_clients.items():
            print(f"  {mode:6} {clients:>2} clients: p50 {p50 * 1000:6.2f} ms, {rate:7.0f} /s")
    for clients in (1, 16):
        full, normal = results["full"][clients], results["normal"][clients]
        print(
            f"  full/normal at {clients:>2} clients: p50 +{(full[0] - normal[0]) * 1000:.2f} ms, "
            f"rate {full[1] / normal[1]:.2f}x"
        )


if __name__ == "__main__":
    main()
