"""Restart, shutdown and the command line: a server's whole life."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.helpers import (
    OPERATOR,
    ROLE,
    SUBNETS,
    Server,
    echo_zip,
    managed_config,
    run_aws,
    start_server,
    start_server_in,
    status_of,
    wait_for,
    wait_version_active,
)


def _gone(pids: set[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def test_a_restarted_server_finds_everything_and_reactivates_versions(tmp: Path) -> None:
    data = tmp / "data"
    first = start_server(data)
    lam = first.client()
    try:
        provider = lam.create_capacity_provider(
            CapacityProviderName="keep", VpcConfig=SUBNETS, PermissionsConfig=OPERATOR
        )["CapacityProvider"]["CapacityProviderArn"]
        lam.create_function(
            FunctionName="classic",
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": echo_zip()},
            Tags={"k": "v"},
        )
        lam.publish_version(FunctionName="classic")
        lam.create_alias(FunctionName="classic", Name="live", FunctionVersion="1")
        lam.create_function(
            FunctionName="managed",
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": echo_zip()},
            MemorySize=2048,
            CapacityProviderConfig=managed_config(provider),
            Publish=True,
        )
        wait_version_active(lam, "managed", "1")
        lam.put_function_scaling_config(
            FunctionName="managed",
            Qualifier="1",
            FunctionScalingConfig={"MinExecutionEnvironments": 2, "MaxExecutionEnvironments": 5},
        )
        # Per-qualifier configuration: an event invoke config and a function URL.
        lam.put_function_event_invoke_config(
            FunctionName="classic", Qualifier="live", MaximumRetryAttempts=0
        )
        url = lam.create_function_url_config(FunctionName="classic", AuthType="NONE")["FunctionUrl"]
        # An event that cannot run yet (no concurrency) stays queued across the restart.
        lam.put_function_concurrency(FunctionName="classic", ReservedConcurrentExecutions=0)
        lam.invoke(
            FunctionName="classic",
            InvocationType="Event",
            Payload=json.dumps({"mark": "queued"}),
        )
    finally:
        assert first.stop() == 0
    second = start_server(data)
    try:
        lam = second.client()
        assert {f["FunctionName"] for f in lam.list_functions()["Functions"]} == {
            "classic",
            "managed",
        }
        assert lam.get_alias(FunctionName="classic", Name="live")["FunctionVersion"] == "1"
        assert lam.get_function(FunctionName="classic")["Tags"] == {"k": "v"}
        assert (
            lam.get_function_event_invoke_config(FunctionName="classic", Qualifier="live")[
                "MaximumRetryAttempts"
            ]
            == 0
        )
        # The same URL id, under the new server's address.
        again = lam.get_function_url_config(FunctionName="classic")["FunctionUrl"]
        assert again.rsplit("/lambda-url/", 1)[1] == url.rsplit("/lambda-url/", 1)[1]
        assert again.startswith(second.url)
        assert (
            lam.get_capacity_provider(CapacityProviderName="keep")["CapacityProvider"]["State"]
            == "Active"
        )
        assert lam.get_function_scaling_config(FunctionName="managed", Qualifier="1")[
            "AppliedFunctionScalingConfig"
        ] == {"MinExecutionEnvironments": 2, "MaxExecutionEnvironments": 5}
        wait_version_active(lam, "managed", "1")
        assert status_of(lam.invoke(FunctionName="managed", Qualifier="1")) == 200
        assert second.marks("classic", "queued") == []
        lam.delete_function_concurrency(FunctionName="classic")
        wait_for(lambda: second.marks("classic", "queued"), timeout_s=30)
        assert lam.invoke(FunctionName="classic", Qualifier="live")["ExecutedVersion"] == "1"
    finally:
        second.stop()


@pytest.mark.parametrize("sandbox", ["container", "process"])
def test_a_server_killed_outright_takes_its_runtimes_with_it(tmp: Path, sandbox: str) -> None:
    # Its children die with it (the parent-death signal, set by setpriv before exec rather
    # than by Python code in the forked child).
    server = start_server(tmp / "data", CORRAL_SANDBOX=sandbox)
    lam = server.client()
    lam.create_function(
        FunctionName="orphan",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": echo_zip()},
    )
    assert status_of(lam.invoke(FunctionName="orphan")) == 200
    pids = server.tree() - {server.proc.pid}
    assert pids, "a runtime runs"
    server.proc.kill()
    server.proc.wait(timeout=30)
    server.close_files()
    wait_for(lambda: _gone(pids), timeout_s=20)


def test_ctrl_c_drains_in_flight_invocations_and_leaves_no_process(tmp: Path) -> None:
    server = start_server(tmp / "data")
    lam = server.client()
    lam.create_function(
        FunctionName="slow",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": echo_zip()},
        Timeout=30,
    )
    lam.invoke(FunctionName="slow")
    results: list[Any] = []

    def call() -> None:
        response = lam.invoke(FunctionName="slow", Payload=json.dumps({"sleep": 2}))
        results.append((response["StatusCode"], response.get("FunctionError")))

    worker = threading.Thread(target=call)
    worker.start()
    wait_for(lambda: any(e["concurrency"] for e in server.state()["onDemand"]))
    pids = server.tree()
    assert len(pids) >= 2
    server.proc.send_signal(signal.SIGINT)
    worker.join(timeout=30)
    assert results == [(200, None)]
    assert server.proc.wait(timeout=30) == 0
    server.close_files()
    wait_for(lambda: _gone(pids), timeout_s=10)


def test_shutdown_gives_up_on_stuck_invocations_after_the_drain_timeout(tmp: Path) -> None:
    server = start_server(tmp / "data", CORRAL_DRAIN_TIMEOUT_S="1")
    lam = server.client(read_timeout=60)
    lam.create_function(
        FunctionName="stuck",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": echo_zip()},
        Timeout=120,
    )
    threading.Thread(
        target=lambda: _swallow(
            lambda: lam.invoke(FunctionName="stuck", Payload=b'{"sleep": 100}')
        ),
        daemon=True,
    ).start()
    wait_for(lambda: any(e["concurrency"] for e in server.state()["onDemand"]))
    pids = server.tree()
    started = time.monotonic()
    server.proc.send_signal(signal.SIGINT)
    server.proc.wait(timeout=30)
    server.close_files()
    assert time.monotonic() - started < 15
    wait_for(lambda: _gone(pids), timeout_s=10)


def _swallow(call: Any) -> None:
    try:
        call()
    except Exception:
        pass


def _corral(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", *args, "--endpoint-url", server.url],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_corral_invoke_and_status_speak_json(server: Server, make_function: Any) -> None:
    name = make_function("cli")
    done = _corral(server, "invoke", name, "--payload", '{"a": 1}', "--log-type", "Tail", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["StatusCode"] == 200 and result["ExecutedVersion"] == "$LATEST"
    assert json.loads(result["Payload"])["event"] == {"a": 1}
    assert "REPORT RequestId" in result["LogResult"]
    failed = _corral(server, "invoke", name, "--payload", '{"fail": "x"}')
    assert failed.returncode == 1 and "function error" in failed.stderr
    state = json.loads(_corral(server, "status", "--json").stdout)
    assert any(e["functionArn"].endswith(f":{name}:$LATEST") for e in state["onDemand"])
    assert state["sandbox"] == "container"
    table = _corral(server, "status")
    assert table.returncode == 0 and "on-demand (classic functions)" in table.stdout
    assert "host:" in table.stdout


def test_corral_invoke_explains_an_unreachable_endpoint() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "corral", "invoke", "x", "--endpoint-url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Is `corral serve` running?" in done.stderr


def test_the_aws_cli_creates_publishes_and_invokes(server: Server, tmp: Path) -> None:
    code = tmp / "code.zip"
    code.write_bytes(echo_zip())

    def aws(*args: str) -> Any:
        done = run_aws(server, *args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    provider = aws(
        "create-capacity-provider",
        "--capacity-provider-name",
        "cli-cp",
        "--vpc-config",
        "SubnetIds=subnet-1,SecurityGroupIds=[]",
        "--permissions-config",
        f"CapacityProviderOperatorRoleArn={ROLE}",
    )
    arn = provider["CapacityProvider"]["CapacityProviderArn"]
    created = aws(
        "create-function",
        "--function-name",
        "cli-fn",
        "--runtime",
        "python3.11",
        "--role",
        ROLE,
        "--handler",
        "app.handler",
        "--zip-file",
        f"fileb://{code}",
        "--memory-size",
        "2048",
        "--capacity-provider-config",
        json.dumps(managed_config(arn, 2)),
    )
    assert created["State"] == "Pending"  # as every CreateFunction answers (test_fidelity)
    shown = aws("get-function-configuration", "--function-name", "cli-fn")
    assert shown["State"] == "ActiveNonInvocable"
    published = aws("publish-version", "--function-name", "cli-fn")
    assert published["Version"] == "1"
    aws("wait", "published-version-active", "--function-name", "cli-fn", "--qualifier", "1")
    out = tmp / "out.json"
    # AWS CLI v1 (from PyPI) sends --payload as it is; v2 needs --cli-binary-format
    # raw-in-base64-out for the same.
    result = aws(
        "invoke",
        "--function-name",
        "cli-fn",
        "--qualifier",
        "1",
        "--payload",
        '{"from": "cli"}',
        str(out),
    )
    assert result["StatusCode"] == 200 and result["ExecutedVersion"] == "1"
    assert json.loads(out.read_text())["event"] == {"from": "cli"}
    aws("delete-function", "--function-name", "cli-fn")
    aws("delete-capacity-provider", "--capacity-provider-name", "cli-cp")


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    tmp_path.chmod(0o777)
    return tmp_path


def test_idle_classic_environments_are_reaped_and_cold_start_again(tmp: Path) -> None:
    import base64

    server = start_server(tmp / "data", CORRAL_CLASSIC_IDLE_TIMEOUT_S="1")
    try:
        lam = server.client()
        lam.create_function(
            FunctionName="idle",
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": echo_zip()},
        )

        def on_demand() -> int:
            return len(server.state()["onDemand"])

        first = lam.invoke(FunctionName="idle", LogType="Tail")
        assert "Init Duration" in base64.b64decode(first["LogResult"]).decode()
        assert on_demand() == 1
        wait_for(lambda: on_demand() == 0, timeout_s=15)
        again = lam.invoke(FunctionName="idle", LogType="Tail")
        assert "Init Duration" in base64.b64decode(again["LogResult"]).decode()
    finally:
        server.stop()


def test_a_relative_data_directory_works_as_the_readme_runs_it(tmp: Path) -> None:
    """``./scripts/run`` keeps its data in ``.corral`` under the current directory; the
    function's code is mounted into its container from there."""
    server = start_server_in(tmp, Path(".corral"), {})
    try:
        lam = server.client()
        lam.create_function(
            FunctionName="relative",
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": echo_zip()},
        )
        answer = lam.invoke(FunctionName="relative", Payload=b'{"here": 1}')
        assert "FunctionError" not in answer
        assert json.loads(answer["Payload"].read())["event"] == {"here": 1}
        assert (tmp / ".corral" / "credentials").exists()
    finally:
        assert server.stop() == 0
