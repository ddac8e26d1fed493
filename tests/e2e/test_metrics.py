"""Metrics as a user reads them: ``GET /metrics`` (Prometheus), ``corral metrics``, and the
per-second history, checked against a workload whose numbers are known."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from corral.cli import main
from tests.helpers import (
    ROLE,
    LambdaClient,
    Server,
    echo_zip,
    error_of,
    managed_config,
    raw,
    start_server,
    status_of,
    wait_for,
    wait_version_active,
)


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics`` by name and sorted labels."""
    text = server.get("/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_counters_match_a_known_workload(
    lam: LambdaClient, server: Server, make_function: Any
) -> None:
    name = make_function("counted")
    for i in range(7):  # 7 invocations, 3 of them errors
        lam.invoke(FunctionName=name, Payload=json.dumps({"fail": "x"} if i < 3 else {}))
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    for _ in range(2):  # 2 throttles
        assert error_of(lam.invoke, FunctionName=name)[0] == "TooManyRequestsException"
    samples = scrape(server)
    labels = {"function": name, "version": "$LATEST"}
    assert value(samples, "corral_invocations_total", **labels) == 7
    assert value(samples, "corral_errors_total", **labels) == 3
    assert value(samples, "corral_throttles_total", cause="concurrency", **labels) == 2
    for cause in ("cpu", "memory", "disk"):
        assert value(samples, "corral_throttles_total", cause=cause, **labels) == 0
    assert value(samples, "corral_duration_seconds_count", **labels) == 7
    buckets = sorted(
        (float(dict(key[1])["le"]), count)
        for key, count in samples.items()
        if key[0] == "corral_duration_seconds_bucket" and dict(key[1])["function"] == name
    )
    assert buckets[-1] == (float("inf"), 7)
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:], strict=False))
    assert 0 < value(samples, "corral_duration_seconds_sum", **labels) < 7 * 3.0
    env = {"capacity_provider": "", **labels}
    assert value(samples, "corral_execution_environments", **env) == 1
    assert value(samples, "corral_execution_environment_concurrency_limit", **env) == 1
    # The history shows the same numbers as per-second rates.
    wait_for(
        lambda: (
            _rates(server, name, "invocations_per_second") == 7
            and _rates(server, name, "errors_per_second") == 3
            and _rates(server, name, "throttles_per_second") == 2
        ),
        timeout_s=5,
    )


def test_a_deleted_functions_series_go_with_it(
    lam: LambdaClient, server: Server, make_function: Any
) -> None:
    name = make_function("shortlived")
    lam.invoke(FunctionName=name)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    error_of(lam.invoke, FunctionName=name)
    assert any(dict(k[1]).get("function") == name for k in scrape(server))
    lam.delete_function(FunctionName=name)
    wait_for(lambda: not any(dict(k[1]).get("function") == name for k in scrape(server)))


def _rates(server: Server, name: str, series: str) -> float:
    found: list[dict[str, Any]] = server.get(
        "/corral/v1/metrics", function=name, minutes="5"
    ).json()["series"]
    return float(sum(v for s in found if s["name"] == series for _, v in s["points"]))


def test_managed_instances_metrics_describe_environments_and_instances(
    lam: LambdaClient, server: Server, provider_arn: str, make_function: Any
) -> None:
    name = make_function(
        "gauged", MemorySize=2048, CapacityProviderConfig=managed_config(provider_arn, 4)
    )
    lam.publish_version(FunctionName=name)
    wait_version_active(lam, name, "1")
    lam.put_function_scaling_config(
        FunctionName=name,
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 3, "MaxExecutionEnvironments": 3},
    )
    with ThreadPoolExecutor(13) as pool:
        calls = [
            pool.submit(lam.invoke, FunctionName=name, Qualifier="1", Payload=b'{"sleep": 1.5}')
            for _ in range(12)
        ]
        time.sleep(0.7)
        during = scrape(server)
        assert error_of(lam.invoke, FunctionName=name, Qualifier="1")[0] == (
            "TooManyRequestsException"
        )
        for call in calls:
            assert call.result()["Payload"].read()  # read: its connection goes back to the pool
    provider = provider_arn.rsplit(":", 1)[-1]
    labels = {"function": name, "version": "1"}
    env = {"capacity_provider": provider, **labels}
    assert value(during, "corral_concurrent_executions", **labels) == 12
    assert value(during, "corral_execution_environments", **env) == 3
    assert value(during, "corral_execution_environment_concurrency", **env) == 4
    assert value(during, "corral_execution_environment_concurrency_limit", **env) == 4
    after = scrape(server)
    assert value(after, "corral_invocations_total", **labels) == 12
    assert value(after, "corral_throttles_total", cause="concurrency", **labels) == 1
    kinds = {dict(k[1])["instance_type"] for k in after if k[0] == "corral_instances"
             and dict(k[1])["capacity_provider"] == provider}  # fmt: skip
    running = sum(
        v for k, v in after.items()
        if k[0] == "corral_instances" and dict(k[1])["capacity_provider"] == provider
        and dict(k[1])["state"] == "Running"
    )  # fmt: skip
    assert running >= 3
    allocated = sum(
        v for k, v in after.items()
        if k[0] == "corral_capacity_provider_vcpu_allocated"
        and dict(k[1])["capacity_provider"] == provider
    )  # fmt: skip
    assert allocated >= 3  # one vCPU per 2 GiB environment
    assert kinds
    wait_for(lambda: _rates(server, name, "invocations_per_second") == 12, timeout_s=5)
    done = CliRunner().invoke(
        main.app, ["metrics", name, "--qualifier", "1", "--minutes", "1",
                   "--endpoint-url", server.url],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    for row in ("invocations/s", "throttles/s", "environments", "env concurrency"):
        assert row in done.stdout, done.stdout
    provider_view = CliRunner().invoke(
        main.app, ["metrics", "--capacity-provider", provider, "--json",
                   "--endpoint-url", server.url],
    )  # fmt: skip
    names = {s["name"] for s in json.loads(provider_view.stdout)["series"]}
    assert {"corral_instances", "corral_capacity_provider_vcpu_allocated"} <= names


def test_bad_metrics_queries_get_clear_errors(server: Server, make_function: Any) -> None:
    name = make_function("badq")
    assert raw(server, "GET", "/corral/v1/metrics")[:2] == (400, "InvalidParameterValueException")
    assert raw(server, "GET", f"/corral/v1/metrics?function={name}&minutes=0")[0] == 400
    assert raw(server, "GET", f"/corral/v1/metrics?function={name}&minutes=61")[0] == 400
    assert raw(server, "GET", f"/corral/v1/metrics?function={name}&qualifier=9")[0] == 404
    assert raw(server, "GET", "/corral/v1/metrics?capacityProvider=nosuch")[0] == 404
    done = CliRunner().invoke(main.app, ["metrics", "--endpoint-url", server.url])
    assert done.exit_code == 1
    idle = CliRunner().invoke(
        main.app, ["metrics", name, "--minutes", "1", "--endpoint-url", server.url]
    )
    assert idle.exit_code == 0 and f"{name}: no data in the last 1 minutes" in idle.stdout


def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", CORRAL_METRICS="off")
    try:
        lam = srv.client()
        lam.create_function(
            FunctionName="quiet",
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": echo_zip()},
        )
        assert status_of(lam.invoke(FunctionName="quiet")) == 200
        text = srv.get("/metrics").text
        assert text.startswith("# metrics are off") and "corral_invocations_total" not in text
        time.sleep(1.5)  # a sampler, were it running, would have sampled by now
        history = srv.get("/corral/v1/metrics", function="quiet").json()
        assert history == {"series": []}
    finally:
        srv.stop()
