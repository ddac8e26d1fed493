"""``corral cost``: the estimate a user runs, and the report of what a function served."""

from __future__ import annotations

import json
import xml.dom.minidom
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from corral.cli import main
from tests.helpers import LambdaClient, Server, managed_config, raw, wait_version_active, zip_code


def corral(*args: str) -> Result:
    return CliRunner().invoke(main.app, list(args), env={"COLUMNS": "200"})


def estimate(*args: str) -> dict[str, Any]:
    done = corral("cost", "estimate", *args, "--json")
    assert done.exit_code == 0, done.output
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_estimate_gives_both_months_and_the_break_even() -> None:
    # By hand: 3 x m6g.large x 730 h x $0.077 x 1.15 = $193.92, plus requests; classic:
    # 5 x 2,628,000 = 13.14M requests ($2.63) and 5,256,000 GB-s x $0.0000133334 ($70.08).
    data = estimate(
        "--rps", "5", "--duration-ms", "200", "--memory-mb", "2048", "--arch", "arm64",
        "--instance-type", "m6g.large",
    )  # fmt: skip
    assert data["classic"]["monthlyUsd"] == pytest.approx(2.63 + 70.08, abs=0.01)
    managed = data["managedInstances"]
    assert (managed["instances"], managed["instanceType"]) == (3, "m6g.large")
    assert managed["monthlyUsd"] == pytest.approx(193.92 + 2.63, abs=0.01)
    assert data["breakEvenRps"] == pytest.approx(193.9245 / (14.5417 - 0.5256), rel=1e-3)
    assert data["cheaper"] == "classic"
    assert len(data["chart"]["rps"]) == len(data["chart"]["classicUsd"]) == 41
    table = corral("cost", "estimate", "--rps", "100", "--duration-ms", "200")
    assert table.exit_code == 0, table.output
    assert "Managed Instances is cheaper here" in table.stdout and "Break-even" in table.stdout


def test_a_daily_shape_and_a_discount(tmp: Path) -> None:
    shape = tmp / "day.json"
    shape.write_text(json.dumps([1000] * 12 + [0] * 12))
    data = estimate(
        "--daily-shape", str(shape), "--duration-ms", "200", "--arch", "arm64",
        "--instance-type", "m6g.large", "--discount", "0.3",
    )  # fmt: skip
    managed = data["managedInstances"]
    assert managed["instances"] == 13  # 25 environments at the peak, 2 per instance
    hours = (13 * 12 + 3 * 12) * 730 / 24
    assert managed["instanceHours"] == pytest.approx(hours, abs=0.1)
    assert managed["computeUsd"] == pytest.approx(hours * 0.077 * 0.7, abs=0.01)
    assert managed["managementFeeUsd"] == pytest.approx(hours * 0.077 * 0.15, abs=0.01)
    lines = tmp / "day.txt"
    lines.write_text("\n".join(["1000"] * 12 + ["0"] * 12))
    assert estimate(
        "--daily-shape", str(lines), "--duration-ms", "200", "--arch", "arm64",
        "--instance-type", "m6g.large", "--discount", "0.3",
    ) == data  # fmt: skip


def test_plot_writes_an_svg_chart_with_the_break_even_marked(tmp: Path) -> None:
    chart = tmp / "cost.svg"
    done = corral("cost", "estimate", "--rps", "20", "--duration-ms", "150", "--plot", str(chart))
    assert done.exit_code == 0, done.output
    document = xml.dom.minidom.parse(str(chart))
    root = document.documentElement
    assert root is not None and root.tagName == "svg"
    assert len(document.getElementsByTagName("polyline")) == 2
    assert "break-even:" in chart.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rps", "-5"], "request rates must be finite and 0 or more"),
        (["--rps", "5", "--instance-type", "m9.huge"], "Unknown instance type 'm9.huge'"),
        (["--rps", "5", "--arch", "sparc"], "x86_64 or arm64"),
        (["--rps", "5", "--discount", "1.5"], "EC2 discount"),
        (["--rps", "5", "--duration-ms", "0"], "the duration must be"),
        ([], "give --rps or --daily-shape"),
        (["--daily-shape", "/nonexistent/day.json"], "cannot read /nonexistent/day.json"),
    ],
)
def test_bad_estimates_are_refused_clearly(args: list[str], message: str) -> None:
    done = corral("cost", "estimate", *args)
    assert done.exit_code == 1
    assert message in " ".join(done.output.split())


def test_types_lists_the_catalogue() -> None:
    done = corral("cost", "types", "--arch", "arm64", "--json")
    assert done.exit_code == 0
    kinds = {k["name"]: k for k in json.loads(done.stdout)}
    assert kinds["m6g.large"]["pricePerHourUsd"] == 0.077
    assert all(k["architecture"] == "arm64" for k in kinds.values())


def test_the_web_console_gets_the_same_estimate_as_json(server: Server) -> None:
    path = "/corral/v1/cost/estimate?rps=5&durationMs=200&architecture=arm64&instanceType=m6g.large"
    status, _, data = raw(server, "GET", path)
    assert status == 200
    assert data == estimate(
        "--rps", "5", "--duration-ms", "200", "--arch", "arm64", "--instance-type", "m6g.large"
    )
    status, error, _ = raw(server, "GET", "/corral/v1/cost/estimate?rps=abc")
    assert (status, error) == (400, "InvalidParameterValueException")


def test_the_estimate_knows_scale_to_zero(server: Server) -> None:
    base = "/corral/v1/cost/estimate?rps=0.001&durationMs=100&instanceType=c6a.large"
    _, _, always = raw(server, "GET", base)
    status, _, sleepy = raw(server, "GET", base + "&idleTimeoutS=300")
    assert status == 200
    assert sleepy == estimate(
        "--rps", "0.001", "--duration-ms", "100", "--instance-type", "c6a.large",
        "--idle-timeout-s", "300",
    )  # fmt: skip
    # Up about a quarter of the time (1 - e^-0.3), so about a quarter of the instance-hours.
    ratio = (
        sleepy["managedInstances"]["instanceHours"] / always["managedInstances"]["instanceHours"]
    )
    assert 0.25 < ratio < 0.27
    assert sleepy["managedInstances"]["coldStartsPerMonth"] > 1000
    assert always["managedInstances"]["coldStartsPerMonth"] == 0
    status, error, _ = raw(server, "GET", base + "&idleTimeoutS=10")
    assert (status, error) == (400, "InvalidParameterValueException")


def test_report_prices_what_a_function_really_served(
    server: Server, lam: LambdaClient, provider_arn: str, make_function: Any
) -> None:
    sleepy = zip_code(
        {"app.py": "import time\ndef handler(event, context):\n    time.sleep(0.3)\n    return 1\n"}
    )
    name = make_function(
        "priced", code=sleepy, MemorySize=2048, CapacityProviderConfig=managed_config(provider_arn)
    )
    lam.publish_version(FunctionName=name)
    wait_version_active(lam, name, "1")

    def call(_: int) -> int:
        answer = lam.invoke(FunctionName=name, Qualifier="1")
        answer["Payload"].read()
        return int(answer["StatusCode"])

    with ThreadPoolExecutor(6) as pool:  # 6 at once, on 12 slots: none throttled
        assert list(pool.map(call, range(30))) == [200] * 30
    done = corral("cost", "report", name, "--since", "1h", "--json", "--endpoint-url", server.url)
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    measured = report["measured"]
    assert measured["invocations"] == 30
    assert 300 <= measured["meanDurationMs"] < 1000
    assert 2 <= measured["peakConcurrency"] <= 6
    # Classic: 30 requests and their GB-seconds, at the published prices.
    assert report["classic"]["windowUsd"] == pytest.approx(
        30 * 0.2e-6 + measured["gbSeconds"] * 0.0000166667, abs=1e-4
    )
    assert measured["gbSeconds"] == pytest.approx(
        30 * measured["meanDurationMs"] / 1000 * 2, rel=1e-3
    )
    # Its provider ran instances all along (at least the first three, since the test began).
    assert sum(measured["instanceHours"].values()) > 0
    assert report["managedInstances"]["asConfigured"]["windowUsd"] > 0
    right = report["managedInstances"]["rightSized"]
    assert right["instances"] == 3 and right["monthlyUsd"] > 150
    table = corral("cost", "report", name, "--endpoint-url", server.url)
    assert table.exit_code == 0 and "right-sized" in table.stdout
    missing = corral("cost", "report", "nope", "--endpoint-url", server.url)
    assert missing.exit_code == 1 and "ResourceNotFoundException" in missing.output
    bad = corral("cost", "report", name, "--since", "yesterday", "--endpoint-url", server.url)
    assert bad.exit_code == 1 and "InvalidParameterValueException" in bad.output


def test_report_of_a_classic_function_compares_it_with_a_right_sized_provider(
    server: Server, lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("classicpriced")
    for _ in range(5):
        lam.invoke(FunctionName=name)["Payload"].read()
    done = corral("cost", "report", name, "--json", "--endpoint-url", server.url)
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["capacityProvider"] is None
    assert report["measured"]["invocations"] == 5 and report["measured"]["instanceHours"] == {}
    assert report["managedInstances"]["rightSized"]["instances"] == 3
    table = corral("cost", "report", name, "--endpoint-url", server.url)
    assert table.exit_code == 0 and "as it ran" not in table.stdout
