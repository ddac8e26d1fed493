"""Waiting for a slot (``corral:queue-timeout-ms``) against retrying 429s, during a scale-out.

One server (``--auth none``, scale-in cooldown 1 s) and two Managed Instances functions, the
same but for one tag: **waits** has ``corral:queue-timeout-ms=60000``, **retries** has none
(AWS's behaviour). Each has 3 environments of one slot (up to 6). A round fills the three
slots with long invocations, then sends one short invocation:

* to **waits**, once: it waits in line until the scaler's new environment takes it;
* to **retries**, as an SDK would: again 20 ms after each 429, until one succeeds.

Reported per function, median of the rounds: the time from sending that invocation to its
answer, and the 429s the caller saw on the way. Then the scaler brings the function back to
three environments and the next round starts. The two functions alternate.

Run:  .venv/bin/python -m bench.slot_wait [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from tests.helpers import (
    OPERATOR,
    ROLE,
    SUBNETS,
    Server,
    managed_config,
    start_server,
    wait_version_active,
    zip_code,
)

HERE = Path(__file__).parent
SLEEPY = zip_code(
    {
        "app.py": "import time\n\ndef handler(event, context):\n"
        "    time.sleep(event.get('sleep', 0))\n    return 1\n"
    }
)
LONG_S = 20.0


def deploy(server: Server, name: str, provider: str, tags: dict[str, str]) -> None:
    lam = server.client()
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": SLEEPY},
        MemorySize=2048,
        Timeout=120,
        CapacityProviderConfig=managed_config(provider, 1),
        Tags=tags,
        Publish=True,
    )
    wait_version_active(lam, name, "1")
    lam.put_function_scaling_config(
        FunctionName=name,
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 3, "MaxExecutionEnvironments": 6},
    )


def environments(server: Server, name: str) -> list[dict[str, Any]]:
    return [e for e in server.environments(name) if e["state"] == "Ready"]


def settle(server: Server, name: str) -> None:
    """Back to three idle environments."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready = environments(server, name)
        if len(ready) == 3 and not any(e["concurrency"] for e in ready):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not settle at three environments")


def one_round(server: Server, name: str, retry: bool) -> dict[str, float]:
    url = f"{server.url}/2015-03-31/functions/{name}/invocations?Qualifier=1"
    long = [
        threading.Thread(
            target=lambda: httpx.post(url, json={"sleep": LONG_S}, timeout=120), daemon=True
        )
        for _ in range(3)
    ]
    for thread in long:
        thread.start()
    deadline = time.monotonic() + 30
    while sum(e["concurrency"] for e in environments(server, name)) < 3:
        if time.monotonic() > deadline:
            raise RuntimeError("the long invocations did not start")
        time.sleep(0.02)
    throttled = 0
    started = time.monotonic()
    with httpx.Client(timeout=120) as http:
        while True:
            answer = http.post(url, json={"sleep": 0})
            if answer.status_code == 200:
                break
            if answer.status_code != 429 or not retry:
                raise RuntimeError(f"{name}: {answer.status_code} {answer.text[:200]}")
            throttled += 1
            time.sleep(0.02)
    took = time.monotonic() - started
    for thread in long:
        thread.join()
    return {"seconds": took, "throttled": float(throttled)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    server = start_server(
        data / "corral",
        CORRAL_AUTH="none",
        CORRAL_LOG_LEVEL="warning",
        CORRAL_SCALE_IN_COOLDOWN_S="1",
        CORRAL_INSTANCE_LAUNCH_DELAY_S="0",
    )
    results: dict[str, list[dict[str, float]]] = {"waits": [], "retries": []}
    try:
        provider = server.client().create_capacity_provider(
            CapacityProviderName="bench",
            VpcConfig=SUBNETS,
            PermissionsConfig=OPERATOR,
            InstanceRequirements={"AllowedInstanceTypes": ["c6a.4xlarge"]},  # room for six
        )["CapacityProvider"]["CapacityProviderArn"]
        deploy(server, "waits", provider, {"corral:queue-timeout-ms": "60000"})
        deploy(server, "retries", provider, {})
        for _ in range(args.rounds):
            for name in results:
                settle(server, name)
                results[name].append(one_round(server, name, retry=name == "retries"))
                print(name, results[name][-1], flush=True)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    report = {
        name: {
            "median_s": statistics.median(r["seconds"] for r in runs),
            "median_throttled": statistics.median(r["throttled"] for r in runs),
            "runs": runs,
        }
        for name, runs in results.items()
    }
    print(f"\none invocation beyond three busy slots, median of {args.rounds} rounds:")
    for name, summary in report.items():
        print(
            f"  {name:8} answered after {summary['median_s']:.2f} s, "
            f"{summary['median_throttled']:.0f} x 429 on the way"
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"slot-wait-{stamp}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
