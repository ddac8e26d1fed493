"""Node.js against Python on Managed Instances: warm invoke latency and throughput, and
memory per slot, measured in the same run on the same server.

One server (``--auth none``) with two published Managed Instances functions, each held at one
execution environment of 1 vCPU (MemorySize 2048) with its runtime's default concurrency
(Python 16, Node.js 64 per vCPU), both a JSON echo:

* **latency**: ``wrk`` with 1 client, median of ``--rounds`` interleaved runs;
* **throughput**: ``wrk`` with 32 clients (Python has 16 slots: half its clients are
  throttled at any time and back off ``--backoff-ms``, as on AWS);
* **memory per slot**: the environment's memory (its cgroup, as ``corral status`` shows it)
  while every slot runs an invocation that awaits / sleeps 2 s, divided by its slots.

Run:  .venv/bin/python -m bench.node [--seconds 8] [--rounds 3] [--node nodejs22.x]
Writes the numbers to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.helpers import (
    OPERATOR,
    ROLE,
    SUBNETS,
    Server,
    start_server,
    wait_version_active,
    zip_code,
)

from bench.fork_memory import memory_mb, scale
from bench.invoke import wrk

HERE = Path(__file__).parent
FUNCTIONS = {
    "py": (
        "python3.12",
        "app.handler",
        {
            "app.py": "import time\n\ndef handler(event, context):\n"
            "    time.sleep(event.get('hold', 0))\n    return event\n"
        },
    ),
    "node": (
        "nodejs22.x",
        "index.handler",
        {
            "index.mjs": "export const handler = async (event) => {\n"
            "  if (event.hold) await new Promise((r) => setTimeout(r, event.hold * 1000));\n"
            "  return event;\n};\n"
        },
    ),
}


def deploy(server: Server, provider: str, name: str, runtime: Any) -> dict[str, Any]:
    """Publish ``name`` on ``provider`` and hold it at one environment; return it."""
    _, handler, files = FUNCTIONS[name]
    lam = server.client()
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler=handler,
        Code={"ZipFile": zip_code(files)},
        MemorySize=2048,
        CapacityProviderConfig={
            "LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": provider}
        },
        Publish=True,
    )
    wait_version_active(lam, name, "1")
    (environment,) = scale(server, name, 1)
    return environment


def memory_per_slot(server: Server, name: str, environment: dict[str, Any]) -> dict[str, float]:
    """Memory of the environment with every slot busy, and per slot."""
    lam = server.client(
        retries={"mode": "standard", "total_max_attempts": 10}, max_pool_connections=64
    )
    slots = int(environment["concurrencyLimit"])
    time.sleep(2)  # what the last load left running ends
    idle = memory_mb(server, name, environment["id"])

    def hold(_: int) -> None:
        lam.invoke(FunctionName=name, Qualifier="1", Payload=b'{"hold": 2}')["Payload"].read()

    with ThreadPoolExecutor(slots) as pool:
        calls = [pool.submit(hold, i) for i in range(slots)]
        time.sleep(1.2)  # all are running now
        busy = memory_mb(server, name, environment["id"])
        for call in calls:
            call.result()
    return {"slots": slots, "idle_mb": idle, "busy_mb": busy, "per_slot_mb": busy / slots}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backoff-ms", type=int, default=10)
    parser.add_argument("--python", default="python3.12")
    parser.add_argument("--node", default="nodejs22.x")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    data = Path(tempfile.mkdtemp(prefix="corral-bench-node-"))
    server = start_server(data / "corral", CORRAL_LOG_LEVEL="warning", CORRAL_AUTH="none")
    report: dict[str, Any] = {"args": vars(args)}
    try:
        provider = server.client().create_capacity_provider(
            CapacityProviderName="bench", VpcConfig=SUBNETS, PermissionsConfig=OPERATOR
        )["CapacityProvider"]["CapacityProviderArn"]
        runtimes = {"py": args.python, "node": args.node}
        environments = {n: deploy(server, provider, n, runtimes[n]) for n in FUNCTIONS}
        urls = {
            n: f"{server.url}/2015-03-31/functions/{n}/invocations?Qualifier=1" for n in FUNCTIONS
        }
        for url in urls.values():
            wrk(url, 8, 2)  # warm-up
        single: dict[str, list[dict[str, Any]]] = {n: [] for n in FUNCTIONS}
        for _ in range(args.rounds):
            for name, url in urls.items():
                single[name].append(wrk(url, 1, args.seconds))
        for name, url in urls.items():
            runs = sorted(single[name], key=lambda r: r["p50_us"])
            many = wrk(url, 32, args.seconds, args.backoff_ms)
            report[name] = {
                "runtime": runtimes[name],
                "c1": runs[len(runs) // 2],
                "c32": many,
                "memory": memory_per_slot(server, name, environments[name]),
            }
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    show(report)
    out = HERE / "results" / f"node-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {out}")


def show(report: dict[str, Any]) -> None:
    py, node = report["py"], report["node"]
    print(
        f"\nManaged Instances, one environment of 1 vCPU each, JSON echo, wrk -t1; "
        f"{py['runtime']} ({py['memory']['slots']} slots) against {node['runtime']} "
        f"({node['memory']['slots']} slots)"
    )
    print(f"{'':28}{'python':>12}{'node':>12}{'node/python':>14}")
    rows = [
        ("c1 p50 (ms)", py["c1"]["p50_us"] / 1000, node["c1"]["p50_us"] / 1000),
        ("c1 ok/s", py["c1"]["ok_per_s"], node["c1"]["ok_per_s"]),
        ("c32 ok/s", py["c32"]["ok_per_s"], node["c32"]["ok_per_s"]),
        ("c32 throttled share", py["c32"]["throttled_share"], node["c32"]["throttled_share"]),
        ("memory idle (MB)", py["memory"]["idle_mb"], node["memory"]["idle_mb"]),
        ("memory, all slots busy (MB)", py["memory"]["busy_mb"], node["memory"]["busy_mb"]),
        ("memory per slot (MB)", py["memory"]["per_slot_mb"], node["memory"]["per_slot_mb"]),
    ]
    for label, a, b in rows:
        ratio = f"{b / a:.2f}x" if a else "-"
        print(f"{label:28}{a:12.2f}{b:12.2f}{ratio:>14}")


if __name__ == "__main__":
    main()
