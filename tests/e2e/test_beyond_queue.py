"""Waiting for a slot instead of a 429 (issue #15.1): the function tag
``corral:queue-timeout-ms`` (and ``corral:queue-max``), off by default.

On AWS a Managed Instances invocation that finds every slot busy gets 429 at once
(LMI_FACTS: "throttled"); with the tag it waits in its version's line, first come first
served, for a slot or a new environment, and gets its 429 only when the wait is up.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import published_managed
from tests.helpers import (
    LambdaClient,
    Server,
    error_of,
    invoke,
    wait_for,
    zip_code,
)

TIMED = zip_code(
    {
        "app.py": "import time\n\n"
        "def handler(event, context):\n"
        "    started = time.time()\n"
        "    remaining_ms = context.get_remaining_time_in_millis()\n"
        "    time.sleep(event.get('sleep', 0))\n"
        "    return {'started': started, 'n': event.get('n'), 'remaining_ms': remaining_ms}\n"
    }
)


def deploy(
    lam: LambdaClient,
    make_function: Any,
    provider_arn: str,
    tags: dict[str, str],
    *,
    environments: int = 3,
    maximum: int | None = None,
) -> str:
    """One slot per environment, ``environments`` of them (up to ``maximum``)."""
    return published_managed(
        lam,
        make_function,
        provider_arn,
        "queue",
        TIMED,
        slots=1,
        tags=tags,
        environments=environments,
        maximum=maximum,
        Timeout=60,
    )


def metric(server: Server, name: str, function: str) -> float:
    """A series of ``GET /metrics`` for version 1 of ``function`` (0 when absent)."""
    pattern = re.compile(rf'^{name}{{function="{function}",version="1"}} (\S+)$', re.M)
    found = pattern.search(server.get("/metrics").text)
    return float(found.group(1)) if found else 0.0


def throttles(server: Server, function: str) -> float:
    """Every 429 of ``function`` so far, all causes."""
    pattern = re.compile(
        rf'^corral_throttles_total{{[^}}]*function="{function}"[^}}]*}} (\S+)$', re.M
    )
    return sum(float(v) for v in pattern.findall(server.get("/metrics").text))


def busy(server: Server, function: str) -> int:
    return sum(e["concurrency"] for e in server.environments(function))


def call(lam: LambdaClient, name: str, n: int, sleep: float) -> dict[str, Any]:
    answer = invoke(lam, name, {"n": n, "sleep": sleep}, Qualifier="1")
    assert answer["StatusCode"] == 200, answer
    result: dict[str, Any] = json.loads(answer["Body"])
    return result


def submit_in_line(
    pool: ThreadPoolExecutor, server: Server, name: str, work: Callable[[int], Any], count: int
) -> list[Future[Any]]:
    """Submit ``count`` calls that must wait, each once the one before it is in line."""
    waiting = []
    already = metric(server, "corral_queued_invocations", name)
    for n in range(count):
        waiting.append(pool.submit(work, n))
        wait_for(lambda n=n: metric(server, "corral_queued_invocations", name) == already + n + 1)
    return waiting


def test_a_burst_twice_the_slots_waits_in_order_and_nothing_is_throttled(
    lam: LambdaClient, make_function: Any, provider_arn: str, server: Server
) -> None:
    name = deploy(lam, make_function, provider_arn, {"corral:queue-timeout-ms": "20000"})
    with ThreadPoolExecutor(6) as pool:
        # Slots free half a second apart and the waiting ones hold theirs 0.6 s: they start
        # 2.0, 2.5 and 2.6 s in, far enough apart that the order they start in is theirs.
        running = [pool.submit(call, lam, name, 100 + n, 2.0 + n / 2) for n in range(3)]
        wait_for(lambda: busy(server, name) == 3)
        waiting = submit_in_line(pool, server, name, lambda n: call(lam, name, n, 0.6), 3)
        assert not any(f.done() for f in running)  # they waited for these, not for a 429
        first = [f.result() for f in running]
        later = [f.result() for f in waiting]
    # First come, first served: the waiting ones started in the order they arrived, after
    # a slot freed.
    starts = [r["started"] for r in later]
    assert starts == sorted(starts)
    base = min(r["started"] for r in first)
    assert all(b - a > 0.05 for a, b in zip(starts, starts[1:], strict=False)), (
        [round(x - base, 3) for x in starts],
        [round(r["started"] - base, 3) for r in first],
    )
    # The caller's deadline ran from its arrival: the wait came out of the 60 s timeout.
    assert all(r["remaining_ms"] > 59_000 for r in first)
    assert all(r["remaining_ms"] < 58_500 for r in later)
    assert min(starts) >= min(r["started"] for r in first) + 1.9
    assert metric(server, "corral_queued_total", name) == 3
    assert metric(server, "corral_queue_wait_seconds_total", name) >= 3 * 1.0
    assert metric(server, "corral_queued_invocations", name) == 0
    assert throttles(server, name) == 0


def test_a_full_line_and_a_wait_that_runs_out_answer_429(
    lam: LambdaClient, make_function: Any, provider_arn: str, server: Server
) -> None:
    tags = {"corral:queue-timeout-ms": "400", "corral:queue-max": "1"}
    name = deploy(lam, make_function, provider_arn, tags)
    with ThreadPoolExecutor(5) as pool:
        running = [pool.submit(call, lam, name, n, 4.0) for n in range(3)]
        wait_for(lambda: busy(server, name) == 3)
        waiting = pool.submit(invoke, lam, name, {"n": 9}, Qualifier="1")
        wait_for(lambda: metric(server, "corral_queued_invocations", name) == 1)
        # The line holds one: the next is refused at once, while the first still waits.
        code, status, message = error_of(lam.invoke, FunctionName=name, Qualifier="1")
        assert (code, status) == ("TooManyRequestsException", 429)
        assert message == "Rate Exceeded."
        assert not waiting.done()
        # The one in line gives up after 400 ms, long before a slot frees (4 s).
        with pytest.raises(lam.exceptions.TooManyRequestsException):
            waiting.result()
        assert not any(f.done() for f in running)
        assert [f.result()["n"] for f in running] == [0, 1, 2]
    assert metric(server, "corral_queue_wait_seconds_total", name) >= 0.35
    assert throttles(server, name) == 2


def test_waiting_is_off_without_the_tag_and_goes_when_it_is_removed(
    lam: LambdaClient, make_function: Any, provider_arn: str, server: Server
) -> None:
    name = deploy(lam, make_function, provider_arn, {"corral:queue-timeout-ms": "20000"})
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    lam.untag_resource(Resource=arn, TagKeys=["corral:queue-timeout-ms"])
    with ThreadPoolExecutor(3) as pool:
        running = [pool.submit(call, lam, name, n, 2.0) for n in range(3)]
        wait_for(lambda: busy(server, name) == 3)
        with pytest.raises(lam.exceptions.TooManyRequestsException):
            invoke(lam, name, {}, Qualifier="1")  # AWS's answer: at once
        assert not any(f.done() for f in running)
        # Tagged again: live, no publish needed.
        lam.tag_resource(Resource=arn, Tags={"corral:queue-timeout-ms": "20000"})
        late = call(lam, name, 7, 0)
        first = [f.result() for f in running]
        # It waited for the first slot that freed (each of the three holds one for 2 s).
        assert late["started"] >= min(r["started"] for r in first) + 1.9
    assert metric(server, "corral_queued_total", name) == 1


def test_waiting_invocations_count_as_demand_and_a_new_environment_serves_them(
    lam: LambdaClient, make_function: Any, provider_arn: str, server: Server
) -> None:
    name = deploy(lam, make_function, provider_arn, {"corral:queue-timeout-ms": "60000"}, maximum=5)
    with ThreadPoolExecutor(5) as pool:
        running = [pool.submit(call, lam, name, n, 8.0) for n in range(3)]
        wait_for(lambda: busy(server, name) == 3)
        started = time.time()
        waiting = [pool.submit(call, lam, name, 10 + n, 0) for n in range(2)]
        served = [f.result(timeout=60) for f in waiting]
        # Served by environments the scaler added for them, not by a slot of the three.
        assert not any(f.done() for f in running)
        assert all(r["started"] >= started for r in served)
        assert len(server.environments(name)) >= 4
        for f in running:
            f.result()


def test_bad_corral_tags_are_refused_with_the_tag_and_its_range(
    lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    for tags, expected in (
        (
            {"corral:queue-timeout-ms": "soon"},
            "Tag corral:queue-timeout-ms must be a whole number from 0 to 900000, not 'soon'.",
        ),
        (
            {"corral:queue-max": "0"},
            "Tag corral:queue-max must be a whole number from 1 to 100000, not '0'.",
        ),
        (
            {"corral:queue-timeout": "100"},
            "Tag corral:queue-timeout is not a Corral setting for functions (known: "
            "corral:fork-after-init, corral:kill-on-timeout, "
            "corral:queue-max, corral:queue-timeout-ms, corral:recycle-after-invocations, "
            "corral:recycle-after-s, corral:recycle-memory-percent; docs/beyond-aws.md).",
        ),
    ):
        assert error_of(
            lam.create_function,
            FunctionName="refused",
            Runtime="python3.11",
            Role="arn:aws:iam::123456789012:role/test",
            Handler="app.handler",
            Code={"ZipFile": TIMED},
            Tags=tags,
        ) == ("InvalidParameterValueException", 400, expected)
    name: str = make_function("tagged", Tags={"team": "corral:anything", "owner": "me"})
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    code, status, message = error_of(
        lam.tag_resource, Resource=arn, Tags={"corral:queue-timeout-ms": "900001"}
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "from 0 to 900000" in message
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "corral:anything", "owner": "me"}
    code, status, message = error_of(
        lam.tag_resource, Resource=provider_arn, Tags={"corral:queue-timeout-ms": "600"}
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "not a Corral setting for capacity providers (known: corral:idle-timeout-s" in message
    code, status, message = error_of(
        lam.tag_resource, Resource=provider_arn, Tags={"corral:idle-timeout-s": "30"}
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "from 60 to 86400" in message
