"""A step from idle to four times the initial capacity: how fast the fleet catches up.

A published Managed Instances function (3 execution environments x 2 slots, a handler that
sleeps 100 ms) gets 24 closed-loop clients at once: four times what it can serve. Each
client retries a throttled call after 20 ms. Two fleets are measured, each with an
instance launch delay of 0 s and of 5 s:

* ``room``: instances big enough (c6a.4xlarge, 16 vCPU) that new environments fit on the
  running ones, so only environments are added;
* ``no room``: instances that hold two environments (c6a.large), so instances are launched.

Reported, from the moment of the step: the first throttle, the first new environment ready
(and its distance from the first throttle), the last throttle, and the share of attempts
throttled until then.

Run:  .venv/bin/python -m bench.step [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests.helpers import (
    OPERATOR,
    ROLE,
    SUBNETS,
    start_server,
    wait_version_active,
    zip_code,
)

HERE = Path(__file__).parent
SLEEPY = zip_code(
    {"app.py": "import time\ndef handler(e, c):\n    time.sleep(0.1)\n    return 1\n"}
)
CLIENTS = 24


async def load(url: str, seconds: float, attempts: list[tuple[float, int]]) -> None:
    """``CLIENTS`` keep-alive connections, each a closed loop (a lean client: the load
    generator must not be what limits the rate)."""
    target = httpx.URL(url)
    request = (
        f"POST {target.raw_path.decode()} HTTP/1.1\r\nHost: {target.host}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    ).encode()
    deadline = time.monotonic() + seconds

    async def one() -> None:
        reader, writer = await asyncio.open_connection(target.host, target.port)
        try:
            while time.monotonic() < deadline:
                writer.write(request)
                status = int((await reader.readline()).split()[1])
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                attempts.append((time.monotonic(), status))
                if status == 429:
                    await asyncio.sleep(0.02)
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(CLIENTS)))


async def watch(base: str, seconds: float, ready: list[tuple[float, int]]) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            state = (await http.get(f"{base}/corral/v1/state")).json()
            count = sum(
                1
                for p in state["capacityProviders"]
                for i in p["instances"]
                for e in i["environments"]
                if e["state"] == "Ready"
            )
            ready.append((time.monotonic(), count))
            await asyncio.sleep(0.1)


def scenario(kind: str, delay_s: float, seconds: float) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="corral-step-"))
    server = start_server(
        data,
        CORRAL_INSTANCE_LAUNCH_DELAY_S=str(delay_s),
        CORRAL_SCALE_INTERVAL_S="1",
        CORRAL_LOG_LEVEL="warning",
        # The load and the watcher are lean raw-HTTP clients: scaling is what is measured
        # here, not signatures (bench.invoke measures those).
        CORRAL_AUTH="none",
    )
    try:
        lam = server.client()
        arn = lam.create_capacity_provider(
            CapacityProviderName="step",
            VpcConfig=SUBNETS,
            PermissionsConfig=OPERATOR,
            InstanceRequirements={"AllowedInstanceTypes": [kind]},
        )["CapacityProvider"]["CapacityProviderArn"]
        lam.create_function(
            FunctionName="step",
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": SLEEPY},
            MemorySize=2048,
            Publish=True,
            CapacityProviderConfig={
                "LambdaManagedInstancesCapacityProviderConfig": {
                    "CapacityProviderArn": arn,
                    "PerExecutionEnvironmentMaxConcurrency": 2,
                }
            },
        )
        wait_version_active(lam, "step", "1")
        time.sleep(delay_s + 1.0)  # idle: the first instances are up and settled
        url = f"{server.url}/2015-03-31/functions/step/invocations?Qualifier=1"
        attempts: list[tuple[float, int]] = []
        ready: list[tuple[float, int]] = []
        start = time.monotonic()

        async def both() -> None:
            await asyncio.gather(load(url, seconds, attempts), watch(server.url, seconds, ready))

        asyncio.run(both())
    finally:
        server.stop()
    return summarise(kind, delay_s, start, attempts, ready)


def summarise(
    kind: str,
    delay_s: float,
    start: float,
    attempts: list[tuple[float, int]],
    ready: list[tuple[float, int]],
) -> dict[str, Any]:
    throttles = [t for t, status in attempts if status == 429]
    initial = ready[0][1] if ready else 0
    grown = [t for t, count in ready if count > initial]
    first_throttle = (throttles[0] - start) if throttles else None
    last_throttle = (throttles[-1] - start) if throttles else None
    window = [a for a in attempts if not throttles or a[0] <= throttles[-1]]
    return {
        "instance_type": kind,
        "launch_delay_s": delay_s,
        "environments_before": initial,
        "environments_after": ready[-1][1] if ready else 0,
        "first_throttle_s": first_throttle,
        "first_new_environment_s": (grown[0] - start) if grown else None,
        "new_environment_after_saturation_s": (
            (grown[0] - throttles[0]) if grown and throttles else None
        ),
        "last_throttle_s": last_throttle,
        "throttled_share_until_then": len(throttles) / max(1, len(window)),
        "ok_invocations": sum(1 for _, status in attempts if status == 200),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    results = [
        scenario(kind, delay, args.seconds)
        for kind in ("c6a.4xlarge", "c6a.large")
        for delay in (0.0, 5.0)
    ]
    print(f"\nstep from idle to {CLIENTS} clients (4 x 3 environments x 2 slots), 100 ms handler")
    print(
        f"{'instances':12} {'launch':>6} {'envs':>9} {'1st 429':>8} {'1st new env':>11} "
        f"{'env-429':>8} {'last 429':>9} {'429 share':>9}"
    )
    for r in results:

        def s(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}s"

        print(
            f"{r['instance_type']:12} {r['launch_delay_s']:>5.0f}s "
            f"{r['environments_before']:>3} -> {r['environments_after']:<3} "
            f"{s(r['first_throttle_s']):>8} {s(r['first_new_environment_s']):>11} "
            f"{s(r['new_environment_after_saturation_s']):>8} {s(r['last_throttle_s']):>9} "
            f"{100 * r['throttled_share_until_then']:>8.1f}%"
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"step-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
