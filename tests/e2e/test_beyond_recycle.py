"""Recycling leaky environments without dropping a request (issue #15.3): the function tags
``corral:recycle-after-invocations``, ``corral:recycle-memory-percent`` and
``corral:recycle-after-s``, off by default.

An environment past a limit is replaced: a new one starts first, then the old one drains what
it runs and stops with the limit as its reason. Under steady concurrent load, not one
invocation fails or is throttled.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest

from tests.conftest import published_managed
from tests.helpers import (
    LambdaClient,
    Server,
    wait_for,
    zip_code,
)

LEAKY = zip_code(
    {
        "app.py": "import time\n\nLEAK = []\n\n"
        "def handler(event, context):\n"
        "    LEAK.append(b'x' * (event.get('leak_mb', 0) * 1024 * 1024))\n"
        "    time.sleep(event.get('sleep', 0))\n"
        "    return context.log_stream_name\n"
    }
)


def load(lam: LambdaClient, name: str, event: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Four clients invoking back to back; what they saw."""
    seen: dict[str, Any] = {"ok": 0, "failed": [], "streams": set()}
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def client() -> None:
        while time.monotonic() < stop:
            try:
                answer = lam.invoke(
                    FunctionName=name, Qualifier="1", Payload=json.dumps(event).encode()
                )
                body = answer["Payload"].read()
                with lock:
                    if answer["StatusCode"] == 200 and "FunctionError" not in answer:
                        seen["ok"] += 1
                        seen["streams"].add(json.loads(body))
                    else:
                        seen["failed"].append(body[:300])
            except Exception as exc:  # a 429 or a 5xx: exactly what must not happen
                with lock:
                    seen["failed"].append(repr(exc)[:300])

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seen


def recycled(server: Server, name: str) -> list[str]:
    """End reasons of the version's environments that were recycled, from the server log."""
    pattern = re.compile(rf"environment \w+ of {name}:1 ended \(Stopped\): (recycled: .*)$", re.M)
    return pattern.findall(server.log())


@pytest.mark.parametrize(
    ("tag", "value", "event", "seconds", "reason"),
    [
        ("corral:recycle-after-invocations", "25", {"sleep": 0.05}, 8, "invocations >= 25"),
        ("corral:recycle-memory-percent", "15", {"sleep": 0.05, "leak_mb": 16}, 10, "% >= 15%"),
        ("corral:recycle-after-s", "10", {"sleep": 0.05}, 14, "s old >= 10 s"),
    ],
)
def test_an_environment_past_its_limit_is_replaced_without_a_failed_invocation(
    lam: LambdaClient,
    make_function: Any,
    provider_arn: str,
    server: Server,
    tag: str,
    value: str,
    event: dict[str, Any],
    seconds: float,
    reason: str,
) -> None:
    name = published_managed(
        lam, make_function, provider_arn, "recycle", LEAKY, slots=2, tags={tag: value}, Timeout=30
    )
    first = {e["id"] for e in server.environments(name)}
    seen = load(lam, name, event, seconds)
    assert seen["failed"] == []
    assert seen["ok"] > 50
    reasons = wait_for(lambda: recycled(server, name), timeout_s=30)
    assert all(reason in r for r in reasons), reasons
    # The function's own log says it too, in the recycled environment's stream.
    notes = [
        e
        for e in server.log_events(name)
        if e["message"].startswith("[corral] This environment is recycled: ")
    ]
    assert notes and all(reason in e["message"] for e in notes), notes
    # Replacements served: more log streams answered than the three it started with, and
    # the version holds three environments again, not all of them the first ones.
    assert len(seen["streams"]) > 3
    now = wait_for(lambda: e if len(e := server.environments(name)) == 3 else None)
    assert {e["id"] for e in now} != first


def test_without_recycle_tags_environments_live_on(
    lam: LambdaClient, make_function: Any, provider_arn: str, server: Server
) -> None:
    name = published_managed(lam, make_function, provider_arn, "norecycle", LEAKY, slots=2)
    first = {e["id"] for e in server.environments(name)}
    seen = load(lam, name, {"sleep": 0.05}, 4)
    assert seen["failed"] == [] and seen["ok"] > 30
    assert recycled(server, name) == []
    assert {e["id"] for e in server.environments(name)} == first
