"""The web console (issue #16) in a real browser: Debian's Chromium, driven by Playwright,
against a real ``corral serve`` running real functions.

Each page is checked for what a user would look at (counts equal to the API's, a chart that
grows, the live map, a log search, a request's story) and for what must never happen (an
error in the browser's console, a failed request). Screenshots of every page are saved under
``CORRAL_SCREENSHOTS`` (default: the test's temporary directory).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import published_managed
from tests.helpers import ROLE, LambdaClient, Server, echo_zip, start_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CORRAL_REQUIRE_BROWSER"):
            pytest.fail(f"no Chromium at {CHROMIUM} (scripts/setup --dev installs Debian's)")
        pytest.skip("no Chromium here and it could not be installed (scripts/setup --dev)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("CORRAL_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Watched:
    """A browser page whose console errors and failed requests are collected."""

    def __init__(self, context: BrowserContext) -> None:
        self.page: Page = context.new_page()
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on(
            "requestfailed",
            lambda r: (
                self.problems.append(f"failed: {r.url} {r.failure}")
                # Cancelled by leaving the page (a live stream, a favicon still loading).
                if "ERR_ABORTED" not in (r.failure or "")
                else None
            ),
        )
        self.page.on(
            "response",
            lambda r: (
                self.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None
            ),
        )


def login(context: BrowserContext, server: Server, key: tuple[str, str] | None = None) -> Watched:
    watched = Watched(context)
    page = watched.page
    page.goto(server.url + "/console/")
    expect(page).to_have_url(re.compile(r"/console/login"))
    key_id, secret = key or server.admin_key
    page.fill("input[name=access_key_id]", key_id)
    page.fill("input[name=secret_access_key]", secret)
    page.click("button[type=submit]")
    expect(page.locator("#who")).to_be_visible()
    return watched


@pytest.fixture
def admin(browser: Browser, server: Server) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    watched = login(context, server)
    yield watched
    context.close()


def wait_until(predicate: Any, timeout_s: float = 15.0) -> None:
    """Poll the page from here (its policy forbids the evaluated predicates of
    ``wait_for_function``)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_s} s")
        time.sleep(0.1)


def js_number(value: float) -> str:
    """A number as the console's script writes it (``toLocaleString``, at most 2 decimals)."""
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def metric(server: Server, name: str, function: str) -> float:
    """The sum of a counter of one function, from ``GET /metrics``."""
    total = 0.0
    for line in server.get("/metrics").text.splitlines():
        if line.startswith(name + "{") and f'function="{function}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def create_echo(lam: LambdaClient, name: str) -> None:
    """A classic function of the echo handler."""
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": echo_zip()},
    )


@pytest.fixture(scope="module")
def counted(server: Server, lam: LambdaClient) -> str:
    """A classic function invoked 5 times with success and twice with a function error."""
    create_echo(lam, "counted")
    for _ in range(5):
        answer = lam.invoke(FunctionName="counted")
        assert answer["StatusCode"] == 200 and answer["Payload"].read()
    for _ in range(2):
        answer = lam.invoke(FunctionName="counted", Payload=json.dumps({"fail": "on purpose"}))
        answer["Payload"].read()  # read: an unread body holds its connection
        assert answer["FunctionError"] == "Unhandled"
    return "counted"


@pytest.fixture(scope="module")
def throttled(server: Server, lam: LambdaClient) -> str:
    """A classic function with no concurrency: its invocation is throttled."""
    create_echo(lam, "throttled")
    lam.put_function_concurrency(FunctionName="throttled", ReservedConcurrentExecutions=0)
    with pytest.raises(lam.exceptions.TooManyRequestsException) as refused:
        lam.invoke(FunctionName="throttled")
    THROTTLED_REQUESTS.append(refused.value.response["ResponseMetadata"]["RequestId"])
    return "throttled"


# The request ids of the throttled invocations (the 429's x-amzn-RequestId).
THROTTLED_REQUESTS: list[str] = []


def test_a_throttled_request_has_its_story_too(
    admin: Watched, server: Server, throttled: str, shots: Path
) -> None:
    page = admin.page
    answer = page.goto(server.url + f"/console/requests/{THROTTLED_REQUESTS[0]}")
    assert answer is not None and answer.status == 200
    expect(page.locator("#status")).to_have_text("throttled: concurrency")
    expect(page.locator("#environment")).to_have_text("none (it never ran)")
    expect(page.locator("#timeline")).to_contain_text("received")
    page.screenshot(path=shots / "request-throttled.png", full_page=True)
    assert admin.problems == []


def test_login_refuses_a_wrong_secret_and_opens_with_the_admin_key(
    browser: Browser, server: Server, shots: Path
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/console/functions")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    page.screenshot(path=shots / "login.png")
    page.fill("input[name=access_key_id]", server.admin_key[0])
    page.fill("input[name=secret_access_key]", "not-the-secret")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("Wrong access key id or secret")
    page.fill("input[name=access_key_id]", server.admin_key[0])
    page.fill("input[name=secret_access_key]", server.admin_key[1])
    page.click("button[type=submit]")
    expect(page).to_have_url(server.url + "/console/functions")  # where it was going
    cookie = next(c for c in context.cookies() if c["name"] == "corral_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.click("text=Log out")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.goto(server.url + "/console/")
    expect(page).to_have_url(re.compile(r"/console/login"))
    context.close()


def test_counts_on_the_overview_and_function_page_equal_the_apis(
    admin: Watched, server: Server, counted: str, throttled: str, shots: Path
) -> None:
    page = admin.page
    page.goto(server.url + f"/console/functions/{counted}")
    expect(page.locator("#total-invocations")).to_have_text(
        f"{metric(server, 'corral_invocations_total', counted):,.0f}"
    )
    assert page.inner_text("#total-invocations") == "7"
    expect(page.locator("#total-errors")).to_have_text("2")
    assert metric(server, "corral_errors_total", counted) == 2
    expect(page.locator("#success-rate")).to_have_text("71.4%")
    # Durations: nearest-rank percentiles of the REPORT lines the API's log search returns.
    reports = [
        float(e["message"].split("Duration: ")[1].split(" ms")[0])
        for e in server.get("/corral/v1/logs", function=counted, since="15m").json()["events"]
        if e["message"].startswith("REPORT ")
    ]
    assert len(reports) == 7
    reports.sort()
    expect(page.locator("#duration-p50")).to_have_text(f"{reports[3]:.2f} ms")
    expect(page.locator("#duration-max")).to_have_text(f"{reports[-1]:.2f} ms")
    expect(page.locator("#duration-p99")).to_have_text(f"{reports[-1]:.2f} ms")
    page.screenshot(path=shots / "function.png", full_page=True)
    page.goto(server.url + f"/console/functions/{throttled}")
    expect(page.locator("#total-throttles")).to_have_text(
        f"{metric(server, 'corral_throttles_total', throttled):,.0f}"
    )
    assert page.inner_text("#total-throttles") == "1"
    page.goto(server.url + "/console/")
    total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in server.get("/metrics").text.splitlines()
        if line.startswith("corral_invocations_total{")
    )
    expect(page.locator("#total-invocations")).to_have_text(f"{total:,.0f}")
    expect(page.locator("text=counted")).to_be_visible()
    expect(page.locator("#now-invocations")).to_have_text(re.compile(r"^[0-9.,]+$"))
    page.screenshot(path=shots / "overview.png", full_page=True)
    assert admin.problems == []


def test_the_monitor_chart_grows_while_invoking_without_a_reload(
    admin: Watched, server: Server, lam: LambdaClient, counted: str
) -> None:
    page = admin.page
    page.goto(server.url + f"/console/functions/{counted}")
    page.evaluate("window.__sameDocument = true")
    chart = page.locator("#chart-requests")
    expect(chart.locator("canvas")).to_have_count(1)
    before = int(chart.get_attribute("data-points") or 0)
    stop = threading.Event()

    def invoke() -> None:
        while not stop.is_set():
            lam.invoke(FunctionName=counted)["Payload"].read()
            time.sleep(0.1)

    worker = threading.Thread(target=invoke)
    worker.start()
    try:
        wait_until(lambda: int(chart.get_attribute("data-points") or 0) >= before + 3)
        wait_until(lambda: int(page.inner_text("#total-invocations").replace(",", "")) > 7)
    finally:
        stop.set()
        worker.join()
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    # Once the invocations stop, the page settles on exactly what /metrics counts.
    time.sleep(1.5)
    expect(page.locator("#total-invocations")).to_have_text(
        f"{metric(server, 'corral_invocations_total', counted):,.0f}", timeout=5000
    )
    assert admin.problems == []


def test_the_capacity_provider_map_shows_the_environments_the_state_shows(
    admin: Watched,
    server: Server,
    lam: LambdaClient,
    make_function: Any,
    provider_arn: str,
    shots: Path,
) -> None:
    name = published_managed(lam, make_function, provider_arn, "mapped", echo_zip(), slots=2)
    provider = provider_arn.rsplit(":", 1)[1]
    page = admin.page
    page.goto(server.url + f"/console/capacity-providers/{provider}")

    def on_page() -> set[str]:
        return {
            e.get_attribute("data-environment") or ""
            for e in page.locator(f"[data-environment]:has-text('{name}')").all()
        }

    state = {e["id"] for e in server.environments(name)}
    assert len(state) == 3
    deadline = time.monotonic() + 10
    while on_page() != state and time.monotonic() < deadline:
        time.sleep(0.2)
    assert on_page() == state
    # Live: scaled to one environment, the map follows without a reload.
    lam.put_function_scaling_config(
        FunctionName=name,
        Qualifier="1",
        FunctionScalingConfig={"MinExecutionEnvironments": 1, "MaxExecutionEnvironments": 1},
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = {e["id"] for e in server.environments(name)}
        if len(state) == 1 and on_page() == state:
            break
        time.sleep(0.2)
    assert len(state) == 1 and on_page() == state
    # Its metrics chart is fed live too.
    fleet = page.locator("#chart-fleet")
    expect(fleet.locator("canvas")).to_have_count(1)
    points = int(fleet.get_attribute("data-points") or 0)
    wait_until(lambda: int(fleet.get_attribute("data-points") or 0) > points)
    page.screenshot(path=shots / "capacity-provider.png", full_page=True)
    # A Managed Instances request's story: JSON logs, its version and instance.
    answer = lam.invoke(FunctionName=name, Qualifier="1", LogType="Tail")
    answer["Payload"].read()
    (environment,) = server.environments(name)
    instance = next(
        i["id"]
        for p in server.state()["capacityProviders"]
        for i in p["instances"]
        if any(e["id"] == environment["id"] for e in i["environments"])
    )
    page.goto(server.url + f"/console/requests/{answer['ResponseMetadata']['RequestId']}")
    expect(page.locator("#version")).to_have_text("1")
    expect(page.locator("#instance")).to_have_text(instance)
    expect(page.locator("#lines")).to_contain_text('"platform.report"')
    assert admin.problems == []


def test_a_log_search_by_request_id_shows_that_request_and_its_story(
    admin: Watched, server: Server, lam: LambdaClient, counted: str, shots: Path
) -> None:
    answer = lam.invoke(
        FunctionName=counted, Payload=json.dumps({"mark": "findme"}), LogType="Tail"
    )
    answer["Payload"].read()
    request_id = answer["ResponseMetadata"]["RequestId"]
    assert request_id in base64.b64decode(answer["LogResult"]).decode()
    expected = server.get("/corral/v1/logs", function=counted, requestId=request_id).json()
    page = admin.page
    page.goto(server.url + f"/console/logs?requestId={request_id}")
    rows = page.locator("table.logs tbody tr")
    expect(rows).to_have_count(len(expected["events"]))
    assert len(expected["events"]) >= 3  # START, the lines, END, REPORT
    links = page.locator("table.logs tbody a").all()
    assert links and {a.inner_text() for a in links} == {request_id[:8]}
    expect(page.locator("#found")).to_contain_text(f"{len(expected['events'])} record(s)")
    page.screenshot(path=shots / "logs.png", full_page=True)
    links[0].click()
    expect(page).to_have_url(server.url + f"/console/requests/{request_id}")
    stream = expected["events"][0]["logStreamName"]
    environment = stream.rsplit("]", 1)[1]
    expect(page.locator("#environment")).to_contain_text(environment)
    expect(page.locator("#version")).to_have_text("$LATEST")
    expect(page.locator("#status")).to_have_text("success")
    expect(page.locator("#timeline")).to_contain_text("received")
    expect(page.locator("#timeline")).to_contain_text("dispatched to a worker")
    expect(page.locator("#timeline")).to_contain_text("handler")
    expect(page.locator("#instance")).to_have_text("on-demand")
    expect(page.locator("#lines")).to_contain_text("MARK findme")
    page.screenshot(path=shots / "request.png", full_page=True)
    # A text search over a time window finds the line too.
    page.goto(server.url + f"/console/logs?function={counted}&text=findme&since=15m")
    expect(page.locator("table.logs")).to_contain_text("MARK findme")
    assert admin.problems == []


def test_invoking_from_the_function_page_shows_the_answer_and_its_request(
    admin: Watched, server: Server, counted: str, shots: Path
) -> None:
    page = admin.page
    page.goto(server.url + f"/console/functions/{counted}#test")
    page.fill("textarea[name=payload]", '{"mark": "from-the-console"}')
    page.click("#test button[type=submit]")
    result = page.locator("#invoke-result .result")
    expect(result).to_contain_text("Succeeded")
    expect(result).to_contain_text("from-the-console")
    page.screenshot(path=shots / "invoke.png", full_page=True)
    page.fill("textarea[name=payload]", "not json")
    page.click("#test button[type=submit]")
    expect(page.locator("#invoke-result")).to_contain_text("The payload is not JSON.")
    assert admin.problems == []


def test_the_cost_page_estimates_as_the_cli_does_and_reports_real_load(
    admin: Watched, server: Server, counted: str, shots: Path
) -> None:
    page = admin.page
    page.goto(server.url + "/console/cost")
    expect(page.locator("#classic-usd")).to_be_visible()
    expected = server.get("/corral/v1/cost/estimate", rps="10", durationMs="100").json()
    for field, part in (("#classic-usd", "classic"), ("#managed-usd", "managedInstances")):
        expect(page.locator(field)).to_have_text(f"${js_number(expected[part]['monthlyUsd'])}")
    expect(page.locator("#chart-cost canvas")).to_have_count(1)
    page.select_option("#report select[name=function]", counted)
    page.click("#report button[type=submit]")
    report = server.get("/corral/v1/cost/report", function=counted, since="1h").json()
    expect(page.locator("#report-invocations")).to_have_text(
        js_number(report["measured"]["invocations"])
    )
    expect(page.locator("#chart-report canvas")).to_have_count(1)
    page.screenshot(path=shots / "cost.png", full_page=True)
    assert admin.problems == []


def test_an_invoke_key_sees_only_its_functions_and_changes_nothing(
    browser: Browser, server: Server, counted: str, throttled: str, provider_arn: str
) -> None:
    body = json.dumps({"Role": "invoke", "FunctionPatterns": ["count*"]}).encode()
    made = httpx.post(
        server.url + "/corral/v1/keys",
        content=body,
        headers=server.signed("POST", "/corral/v1/keys", body),
        timeout=10,
    ).json()
    context = browser.new_context()
    watched = login(context, server, (made["AccessKeyId"], made["SecretAccessKey"]))
    page = watched.page
    page.goto(server.url + "/console/functions")
    expect(page.locator("table")).to_contain_text(counted)
    expect(page.locator("table")).not_to_contain_text(throttled)
    watched.problems.clear()
    answer = page.goto(server.url + f"/console/functions/{throttled}")
    assert answer is not None and answer.status == 404
    provider = provider_arn.rsplit(":", 1)[1]
    answer = page.goto(server.url + f"/console/capacity-providers/{provider}")
    assert answer is not None and answer.status == 403
    status = page.evaluate(
        f"fetch('/console/cost/report?function={throttled}').then(r => r.status)"
    )
    assert status == 404  # its measured cost is hidden as well
    watched.problems.clear()
    # It may invoke its function from the page, and the overview counts only its functions.
    page.goto(server.url + f"/console/functions/{counted}#test")
    page.click("#test button[type=submit]")
    expect(page.locator("#invoke-result .result")).to_contain_text("Succeeded")
    page.goto(server.url + "/console/")
    expect(page.locator("#total-throttles")).to_have_text("0")
    assert watched.problems == []
    context.close()


def test_a_form_from_another_site_or_without_its_token_is_refused(
    admin: Watched, server: Server, counted: str
) -> None:
    page = admin.page
    page.goto(server.url + "/console/")
    # The session cookie goes along (same origin), but not the page's CSRF token.
    status = page.evaluate(
        f"fetch('/console/functions/{counted}/invoke', {{method: 'POST', "
        "body: new URLSearchParams({payload: '{}'})}).then(r => r.status)"
    )
    assert status == 403
    admin.problems.clear()


def test_without_authentication_the_console_opens_without_a_login(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    open_server = start_server(tmp_path_factory.mktemp("open"), CORRAL_AUTH="none")
    try:
        context = browser.new_context()
        watched = Watched(context)
        page = watched.page
        page.goto(open_server.url + "/console/")
        expect(page).to_have_url(open_server.url + "/console/")
        expect(page.locator("#who")).to_have_text("no authentication")
        expect(page.locator("text=Log out")).to_have_count(0)
        # Its forms still need the page's token, and the request must come from its origin.
        token = json.loads(page.get_attribute("body", "hx-headers") or "{}")["X-CSRF-Token"]
        refused = httpx.post(
            open_server.url + "/console/logout",
            data={"csrf": token},
            headers={"Origin": "http://evil.example"},
        )
        assert refused.status_code == 403
        assert watched.problems == []
        context.close()
    finally:
        open_server.stop()


def test_lists_and_wrong_addresses_give_pages_that_say_what_to_do(
    admin: Watched, server: Server, counted: str, shots: Path
) -> None:
    page = admin.page
    page.goto(server.url + "/console/functions")
    expect(page.locator("table")).to_contain_text(counted)
    page.goto(server.url + "/console/logs")
    expect(page.locator("main")).to_contain_text("paste a request id")
    page.screenshot(path=shots / "logs-empty.png", full_page=True)
    page.goto(server.url + "/console/login")  # already logged in: on to the overview
    expect(page).to_have_url(server.url + "/console/")
    page.goto(server.url + "/console")
    expect(page).to_have_url(server.url + "/console/")
    assert admin.problems == []
    for path, status, text in (
        ("/console/functions/nope", 404, "Function not found: nope"),
        ("/console/capacity-providers/nope", 404, "Capacity provider not found: nope"),
        ("/console/requests/01a24499-0000-7000-8000-000000000000", 404, "No record of request"),
        ("/console/events?topic=weather", 400, "Unknown topic"),
        ("/console/logs?function=counted&since=forever", 400, "since"),
    ):
        answer = page.goto(server.url + path)
        assert answer is not None and answer.status == status, path
        expect(page.get_by_role("alert")).to_contain_text(text)
    admin.problems.clear()
    # Without a session, a form post is refused and a page sends to the login.
    assert httpx.post(server.url + "/console/logout").status_code == 401
    gone = httpx.get(server.url + "/console/cost", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/console/login")
