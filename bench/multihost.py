"""Instances on Ray nodes against instances on this host, in the same run.

A Ray cluster of this machine (a head and two ``corral`` nodes, each on its own loopback
address, ``tests.raycluster``) and two servers (``--auth none``, so only the backend
differs): ``local`` (the default backend) and ``ray`` (``--backend ray``). Each serves the
same published Managed Instances function (a JSON echo, 3 environments x 4 slots, pinned).

1. Warm invoke, ``wrk`` with 1 client (latency: median of interleaved rounds) and 32
   (successful invocations per second; throttled clients back off 10 ms). Targets: remote
   c1 p50 at most +0.3 ms above local, c32 at least 0.8x local.
   Where the CPU goes at c32: microseconds of CPU per successful invocation spent by the
   server, the agents and the runtimes (all on this machine's cores).
2. Memory of an agent on a node: the RSS of its actor process with its environments (their
   runtimes are processes of their own and not counted).
3. From saturation to a new environment serving on another instance: a function of one
   2-vCPU environment (a whole node) with 2 slots, then a closed-loop load of 6 clients;
   the time from the first throttle to the first answer from a second environment (told
   apart by its log stream), which can only be on the other node; the same on the local
   backend for reference.
4. Failover: two environments of one slot on each node, four invocations in flight, one
   node's process tree killed: when its invocations fail, when all four environments are
   ready again (on a node added right after the kill), when invocations succeed again.

Run:  .venv/bin/python -m bench.multihost [--seconds 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from tests.helpers import (
    OPERATOR,
    ROLE,
    SUBNETS,
    Server,
    start_server,
    wait_version_active,
    zip_code,
)
from tests.raycluster import RayCluster

from bench.invoke import deploy, wrk

HERE = Path(__file__).parent
SLEEPY = (
    "import time\n\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0))\n"
    "    return context.log_stream_name\n"
)


def url(server: Server, name: str) -> str:
    return f"{server.url}/2015-03-31/functions/{name}/invocations?Qualifier=1"


def invoke_rates(servers: dict[str, Server], args: argparse.Namespace) -> dict[str, Any]:
    targets = {mode: url(server, "echo") for mode, server in servers.items()}
    for target in targets.values():
        wrk(target, 8, 2)  # warm-up
    single: dict[str, list[dict[str, Any]]] = {mode: [] for mode in targets}
    for _ in range(args.rounds):
        for mode, target in targets.items():
            single[mode].append(wrk(target, 1, args.seconds))
    result: dict[str, Any] = {}
    for mode, target in targets.items():
        runs = sorted(single[mode], key=lambda r: r["p50_us"])
        before = cpu_seconds(servers[mode])
        loaded = wrk(target, 32, args.seconds, 10)
        after = cpu_seconds(servers[mode])
        loaded["cpu_us_per_ok"] = {
            part: 1e6 * (after.get(part, 0.0) - before.get(part, 0.0)) / max(1, loaded["ok"])
            for part in after
        }
        result[mode] = {1: runs[len(runs) // 2], 32: loaded}
    return result


def cpu_seconds(server: Server) -> dict[str, float]:
    """CPU time (user + system) so far of the server, the agents and the runtimes.

    The server is its process and its helpers (the log writer); agents are the actor
    processes on the nodes; runtimes are every ``awslambdaric`` process, wherever it runs.
    """
    own = server.tree()
    parts: dict[str, float] = {"server": 0.0, "agents": 0.0, "runtimes": 0.0}
    for process in psutil.process_iter(["name", "cmdline", "cpu_times"]):
        try:
            times = process.info["cpu_times"]
            command = " ".join(process.info["cmdline"] or [])
            name = process.info["name"] or ""
        except psutil.Error:
            continue
        if times is None:
            continue
        spent = times.user + times.system
        if "awslambdaric" in command:
            parts["runtimes"] += spent
        elif name.startswith("ray::AgentActor"):
            parts["agents"] += spent
        elif process.pid in own:
            parts["server"] += spent
    return parts


def agent_memory(cluster: RayCluster) -> list[float]:
    """RSS (MiB) of each agent's actor process (a Ray worker running corral.agent)."""
    found = []
    for node in cluster.nodes:
        for pid in node.tree():
            try:
                process = psutil.Process(pid)
                if process.name().startswith("ray::AgentActor"):
                    found.append(process.memory_info().rss / 2**20)
            except psutil.Error:
                continue
    return found


def provider(server: Server, name: str) -> str:
    arn: str = server.client().create_capacity_provider(
        CapacityProviderName=name, VpcConfig=SUBNETS, PermissionsConfig=OPERATOR
    )["CapacityProvider"]["CapacityProviderArn"]
    return arn


def function(
    server: Server, name: str, arn: str, *, memory_mb: int, slots: int, pinned: int, maximum: int
) -> None:
    lam = server.client()
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_code({"app.py": SLEEPY})},
        MemorySize=memory_mb,
        Timeout=30,
        CapacityProviderConfig={
            "LambdaManagedInstancesCapacityProviderConfig": {
                "CapacityProviderArn": arn,
                "PerExecutionEnvironmentMaxConcurrency": slots,
            }
        },
        Publish=True,
    )
    lam.put_function_scaling_config(
        FunctionName=name,
        Qualifier="1",
        FunctionScalingConfig={
            "MinExecutionEnvironments": pinned,
            "MaxExecutionEnvironments": maximum,
        },
    )
    wait_version_active(lam, name, "1")


def streams(server: Server, name: str) -> set[str]:
    return {
        e["id"]
        for p in server.state()["capacityProviders"]
        for i in p["instances"]
        for e in i["environments"]
        if e["functionArn"].endswith(f":{name}:1") and e["state"] == "Ready"
    }


def scale_out(server: Server) -> dict[str, float]:
    """Seconds from the first throttle to the first answer of a second environment."""
    arn = provider(server, "scaleout")
    # One environment of 2 vCPU (4 GiB at 2 GiB per vCPU): a whole node each.
    function(server, "wide", arn, memory_mb=4096, slots=2, pinned=1, maximum=2)
    # Published with the default minimum (3; two fit), then pinned to 1: wait for the
    # scale-in to one environment, so the second one can only come from the load.
    deadline = time.monotonic() + 60
    while len(streams(server, "wide")) != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    target = url(server, "wide")
    first_throttle: list[float] = []
    served_by_new: list[float] = []
    seen: set[str] = set()  # log streams that answered: one per environment
    stop = time.monotonic() + 60

    def client() -> None:
        with httpx.Client(timeout=60) as http:
            while time.monotonic() < stop and not served_by_new:
                answer = http.post(target, content=b'{"sleep": 0.2}')
                now = time.monotonic()
                if answer.status_code == 429:
                    if not first_throttle:
                        first_throttle.append(now)
                    time.sleep(0.02)
                elif answer.status_code == 200:
                    seen.add(answer.json())
                    if len(seen) > 1 and first_throttle and not served_by_new:
                        served_by_new.append(now)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cleanup(server, "wide", arn)
    if not first_throttle or not served_by_new:
        return {"seconds": float("nan")}
    return {"seconds": served_by_new[0] - first_throttle[0]}


def failover(server: Server, cluster: RayCluster) -> dict[str, float]:
    arn = provider(server, "failover")
    function(server, "sturdy", arn, memory_mb=2048, slots=1, pinned=4, maximum=4)
    holding = [
        i
        for p in server.state()["capacityProviders"]
        if p["name"] == "failover"
        for i in p["instances"]
        if i["environments"]
    ]
    victim_ip = holding[0]["address"].rsplit(":", 1)[0]
    victim = next(n for n in cluster.nodes if n.ip == victim_ip)
    target = url(server, "sturdy")
    failed_at: list[float] = []

    def call() -> None:
        answer = httpx.post(target, content=b'{"sleep": 5}', timeout=60)
        if answer.status_code >= 500:
            failed_at.append(time.monotonic())

    calls = [threading.Thread(target=call) for _ in range(4)]
    for thread in calls:
        thread.start()
    time.sleep(1.0)
    killed = time.monotonic()
    victim.kill()
    cluster.nodes.remove(victim)
    cluster.add_worker()
    for thread in calls:
        thread.join()
    ready_at = float("nan")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(streams(server, "sturdy")) == 4:
            ready_at = time.monotonic()
            break
        time.sleep(0.05)
    cleanup(server, "sturdy", arn)
    return {
        "invocations_failed_s": (min(failed_at) - killed) if failed_at else float("nan"),
        "capacity_back_s": ready_at - killed,
        "lost_invocations": float(len(failed_at)),
    }


def cleanup(server: Server, name: str, arn: str) -> None:
    lam = server.client()
    lam.delete_function(FunctionName=name)
    lam.delete_capacity_provider(CapacityProviderName=arn)
    time.sleep(3.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    data = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    cluster = RayCluster().start(workers=2)
    servers: dict[str, Server] = {}
    report: dict[str, Any] = {}
    try:
        common = {"CORRAL_AUTH": "none", "CORRAL_LOG_LEVEL": "warning"}
        servers["local"] = start_server(data / "local", **common)
        servers["ray"] = start_server(
            data / "ray",
            **common,
            CORRAL_BACKEND="ray",
            CORRAL_RAY_ADDRESS=cluster.address,
            CORRAL_SCALE_IN_COOLDOWN_S="2",
        )
        for server in servers.values():
            deploy(server, "python3.11", environments=3)
        report["invoke"] = invoke_rates(servers, args)
        report["agent_rss_mib"] = agent_memory(cluster)
        for server in servers.values():
            lam = server.client()
            lam.delete_function(FunctionName="echo")
            lam.delete_capacity_provider(CapacityProviderName="bench")
        time.sleep(5.0)
        report["scale_out"] = {mode: scale_out(server) for mode, server in servers.items()}
        report["failover"] = failover(servers["ray"], cluster)
    finally:
        for server in servers.values():
            server.stop()
        cluster.stop()
        shutil.rmtree(data, ignore_errors=True)
    show(report, args)


def show(report: dict[str, Any], args: argparse.Namespace) -> None:
    local, remote = report["invoke"]["local"], report["invoke"]["ray"]
    c1 = (remote[1]["p50_us"] - local[1]["p50_us"]) / 1000
    c32 = remote[32]["ok_per_s"] / local[32]["ok_per_s"]
    print(
        f"\nwarm invoke, 3 x 4 slots, JSON echo, {args.seconds:g} s a run "
        f"({args.rounds} rounds at 1 client)"
    )
    for mode, runs in report["invoke"].items():
        print(
            f"  {mode:6} c1 p50 {runs[1]['p50_us'] / 1000:.3f} ms  "
            f"c32 {runs[32]['ok_per_s']:.0f} ok/s (429: {100 * runs[32]['throttled_share']:.0f}%)"
        )
    for mode, runs in report["invoke"].items():
        split = runs[32]["cpu_us_per_ok"]
        print(
            f"  {mode:6} CPU per successful invocation at c32: "
            + ", ".join(f"{part} {us:.0f} us" for part, us in split.items())
            + f" (total {sum(split.values()):.0f} us)"
        )
    print(
        f"  ray - local at c1: {c1:+.3f} ms (target <= +0.3); "
        f"ray / local at c32: {c32:.2f}x (target >= 0.8)"
    )
    rss = report["agent_rss_mib"]
    print(f"agent RSS per node: {', '.join(f'{r:.0f}' for r in rss)} MiB")
    so = report["scale_out"]
    print(
        "saturation to a new environment serving on another instance: "
        f"ray {so['ray']['seconds']:.2f} s (another node), local {so['local']['seconds']:.2f} s"
    )
    fo = report["failover"]
    print(
        f"failover: in-flight invocations failed {fo['invocations_failed_s']:.2f} s after the kill "
        f"({fo['lost_invocations']:.0f} lost); all environments ready again "
        f"{fo['capacity_back_s']:.2f} s after it (a node added right after the kill)"
    )
    report["summary"] = {"c1_delta_ms": c1, "c32_ratio": c32}
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"multihost-{stamp}.json").write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
