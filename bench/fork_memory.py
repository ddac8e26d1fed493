"""Memory per slot and init time, with and without ``corral:fork-after-init``.

One server (``--auth none``) and three Managed Instances functions with the same code, whose
init allocates and touches ``--init-mb`` MB (200 by default) and whose handler holds its slot
for a second:

* **one worker**: ``PerExecutionEnvironmentMaxConcurrency`` 1, the reference;
* **16, forked**: 16 slots, ``corral:fork-after-init=true``;
* **16, awslambdaric**: 16 slots, no tag (AWS's behaviour: each worker runs the init).

Each function in turn: published, brought to one environment, then a second environment is
started on its own (so its init has the machine to itself): its ``Init Duration`` is the init
time. Its memory (the environment's cgroup, as ``corral status`` shows it) is read once it is
steady after init, and again after 2 x slots concurrent invocations filled both environments.
The function is then deleted before the next. Reported: memory and init time as a ratio to
the one-worker environment's.

Run:  .venv/bin/python -m bench.fork_memory [--init-mb 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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
CODE = zip_code(
    {
        "app.py": "import os, time\n"
        "BALLAST = b'\\x01' * (int(os.environ['INIT_MB']) * 1024 * 1024)\n\n"
        "def handler(event, context):\n"
        "    scratch = bytearray(1024 * 1024)\n"
        "    time.sleep(event.get('sleep', 0))\n"
        "    return os.getpid()\n"
    }
)
MEMORY_MB = 6144
CASES = {
    "one worker": (1, {}),
    "16, forked": (16, {"corral:fork-after-init": "true"}),
    "16, awslambdaric": (16, {}),
}


def scale(server: Server, name: str, count: int) -> list[dict[str, Any]]:
    """Hold the version at ``count`` environments; return them once all are Ready."""
    server.client().put_function_scaling_config(
        FunctionName=name,
        Qualifier="1",
        FunctionScalingConfig={
            "MinExecutionEnvironments": count,
            "MaxExecutionEnvironments": count,
        },
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        envs = server.environments(name)
        if len(envs) == count and all(e["state"] == "Ready" for e in envs):
            return envs
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not settle at {count} environments")


def memory_mb(server: Server, name: str, env_id: str) -> float:
    for env in server.environments(name):
        if env["id"] == env_id:
            return float(env["memoryUtilization"]) * float(env["memoryMiB"])
    raise RuntimeError(f"environment {env_id} is gone")


def steady_memory_mb(server: Server, name: str, env_id: str) -> float:
    """The environment's memory once two readings 2 s apart agree within 1%."""
    last = memory_mb(server, name, env_id)
    for _ in range(60):
        time.sleep(2)
        now = memory_mb(server, name, env_id)
        if abs(now - last) <= 0.01 * max(now, 1.0):
            return now
        last = now
    return last


def measure(server: Server, provider: str, label: str, init_mb: int) -> dict[str, float]:
    slots, tags = CASES[label]
    name = "f" + str(abs(hash(label)))[:8]
    lam = server.client()
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": CODE},
        MemorySize=MEMORY_MB,
        Timeout=60,
        Environment={"Variables": {"INIT_MB": str(init_mb)}},
        CapacityProviderConfig=managed_config(provider, slots),
        Tags=tags,
        Publish=True,
    )
    try:
        wait_version_active(lam, name, "1")
        (first,) = scale(server, name, 1)
        second = next(e for e in scale(server, name, 2) if e["id"] != first["id"])
        after_init = steady_memory_mb(server, name, second["id"])
        url = f"{server.url}/2015-03-31/functions/{name}/invocations?Qualifier=1"
        with httpx.Client(timeout=120) as http, ThreadPoolExecutor(2 * slots) as pool:
            answers = list(pool.map(lambda _: http.post(url, json={"sleep": 1}), range(2 * slots)))
        if any(a.status_code != 200 for a in answers):
            raise RuntimeError(f"{label}: {[a.status_code for a in answers]}")
        after_invocations = max(memory_mb(server, name, e["id"]) for e in (first, second))
        time.sleep(1.5)
        after_invocations = max(
            after_invocations, *(memory_mb(server, name, e["id"]) for e in (first, second))
        )
        return {
            "init_ms": float(second["initDurationMs"]),
            "memory_after_init_mb": after_init,
            "memory_after_invocations_mb": after_invocations,
        }
    finally:
        lam.delete_function(FunctionName=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init-mb", type=int, default=200)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    server = start_server(data / "corral", CORRAL_AUTH="none", CORRAL_LOG_LEVEL="warning")
    results: dict[str, dict[str, float]] = {}
    try:
        provider = server.client().create_capacity_provider(
            CapacityProviderName="bench",
            VpcConfig=SUBNETS,
            PermissionsConfig=OPERATOR,
            InstanceRequirements={"AllowedInstanceTypes": ["c6a.4xlarge"]},
        )["CapacityProvider"]["CapacityProviderArn"]
        for label in CASES:
            results[label] = measure(server, provider, label, args.init_mb)
            print(label, results[label], flush=True)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    one = results["one worker"]
    print(f"\ninit touching {args.init_mb} MB; ratios to the one-worker environment:")
    print(f"  {'':18} {'init ms':>9} {'MB after init':>14} {'MB after load':>14}")
    for label, r in results.items():
        print(
            f"  {label:18} {r['init_ms']:9.0f} {r['memory_after_init_mb']:14.0f} "
            f"{r['memory_after_invocations_mb']:14.0f}   init {r['init_ms'] / one['init_ms']:.2f}x"
            f", memory {r['memory_after_init_mb'] / one['memory_after_init_mb']:.2f}x"
            f" / {r['memory_after_invocations_mb'] / one['memory_after_invocations_mb']:.2f}x"
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"fork-memory-{stamp}.json").write_text(
        json.dumps({"init_mb": args.init_mb, "results": results}, indent=2)
    )


if __name__ == "__main__":
    main()
