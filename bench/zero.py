"""Cold start from zero (``corral:idle-timeout-s``) against a classic cold start and a warm
invocation.

One server (``--auth none``; empty instances terminate 1 s after their last environment;
instances take ``--launch-delay`` seconds to launch, 2 by default, as ``corral serve``
simulates) and a capacity provider tagged ``corral:idle-timeout-s=60``. Each round:

* a Managed Instances function (one environment, the echo handler) is invoked warm 20 times;
* it is left alone until it is scaled to zero and its instances are gone (about 61 s);
* then invoked once: the time to its answer is the **cold start from zero** (an instance and
  an environment started for it), and its ``initDurationMs`` the environment's init;
* a new classic function of the same code is invoked once: a **classic cold start**, the
  reference measured in the same run.

Run:  .venv/bin/python -m bench.zero [--rounds 2] [--launch-delay 2]
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.helpers import (
    OPERATOR,
    ROLE,
    SUBNETS,
    LambdaClient,
    Server,
    echo_zip,
    managed_config,
    start_server,
    wait_version_active,
)

HERE = Path(__file__).parent


def timed_invoke(lam: LambdaClient, name: str, **kwargs: Any) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    answer = lam.invoke(FunctionName=name, LogType="Tail", **kwargs)
    took = time.perf_counter() - started
    if answer["StatusCode"] != 200 or "FunctionError" in answer:
        raise RuntimeError(f"{name}: {answer['Payload'].read()[:300]!r}")
    return took, answer


def init_ms(answer: dict[str, Any]) -> float:
    """The init duration the invocation's report gives (JSON or text)."""
    for line in base64.b64decode(answer["LogResult"]).decode().splitlines():
        if '"platform.report"' in line:
            return float(json.loads(line)["record"]["metrics"]["initDurationMs"])
        if line.startswith("REPORT") and "Init Duration:" in line:
            return float(line.split("Init Duration:")[1].split()[0])
    raise RuntimeError("no init duration in the report")


def one_round(server: Server, provider: str, index: int) -> dict[str, float]:
    lam = server.client()
    name = f"zero-{index}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": echo_zip()},
        MemorySize=2048,
        CapacityProviderConfig=managed_config(provider, 4),
        Publish=True,
    )
    wait_version_active(lam, name, "1")
    lam.put_function_scaling_config(
        FunctionName=name,
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 1, "MaxExecutionEnvironments": 1},
    )
    warm = [timed_invoke(lam, name, Qualifier="1")[0] for _ in range(20)]
    deadline = time.monotonic() + 180
    while True:
        state = server.state()
        asleep = f"{name}:1" in {a.split(":function:")[1] for a in state["scaledToZero"]}
        instances = [
            i
            for p in state["capacityProviders"]
            if p["arn"] == provider
            for i in p["instances"]
            if i["state"] != "Terminated"
        ]
        if asleep and not instances:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not scale to zero")
        time.sleep(0.5)
    cold_s, cold = timed_invoke(lam, name, Qualifier="1")
    classic = f"classic-{index}"
    lam.create_function(
        FunctionName=classic,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": echo_zip()},
    )
    classic_s, classic_answer = timed_invoke(lam, classic)
    for gone in (name, classic):
        lam.delete_function(FunctionName=gone)
    return {
        "warm_p50_ms": statistics.median(warm) * 1000,
        "from_zero_s": cold_s,
        "from_zero_init_ms": init_ms(cold),
        "classic_cold_s": classic_s,
        "classic_init_ms": init_ms(classic_answer),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--launch-delay", type=float, default=2.0)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    server = start_server(
        data / "corral",
        CORRAL_AUTH="none",
        CORRAL_LOG_LEVEL="warning",
        CORRAL_SCALE_IN_COOLDOWN_S="1",
        CORRAL_INSTANCE_LAUNCH_DELAY_S=str(args.launch_delay),
    )
    runs: list[dict[str, float]] = []
    try:
        provider = server.client().create_capacity_provider(
            CapacityProviderName="bench",
            VpcConfig=SUBNETS,
            PermissionsConfig=OPERATOR,
            Tags={"corral:idle-timeout-s": "60"},
        )["CapacityProvider"]["CapacityProviderArn"]
        for index in range(args.rounds):
            runs.append(one_round(server, provider, index))
            print(runs[-1], flush=True)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(f"\nmedian of {args.rounds} rounds (instance launch {args.launch_delay:g} s):")
    print(f"  warm invocation            {median['warm_p50_ms']:8.1f} ms")
    print(
        f"  cold start from zero       {median['from_zero_s'] * 1000:8.0f} ms"
        f"  (init {median['from_zero_init_ms']:.0f} ms)"
    )
    print(
        f"  classic cold start         {median['classic_cold_s'] * 1000:8.0f} ms"
        f"  (init {median['classic_init_ms']:.0f} ms)"
    )
    print(f"  from zero / classic        {median['from_zero_s'] / median['classic_cold_s']:8.2f}x")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"zero-{stamp}.json").write_text(
        json.dumps({"launch_delay_s": args.launch_delay, "median": median, "runs": runs}, indent=2)
    )


if __name__ == "__main__":
    main()
