"""A function that prints as fast as it can slows itself, not the others (issue #13).

Each environment's log output is read at a bounded rate (``CORRAL_LOG_RATE_BYTES_PER_S``,
a quarter of a MiB per second here); past it the function's own writes wait. Nothing it
wrote is lost, its log says that it was slowed, and a quiet function on the same server
keeps its speed, measured against itself idle in the same test (``bench.neighbours``
measures the same with the default rate and more cases).
"""

from __future__ import annotations

import base64
import json
import statistics
import threading
import time
from typing import Any

import psutil

from tests.helpers import LambdaClient, Server, invoke, zip_code

SERVER_ENV = {"CORRAL_LOG_RATE_BYTES_PER_S": "262144"}

NUMBERED = r"""
def handler(event, context):
    for n in range(event["lines"]):
        print(f"line {n:05d} " + "." * 480)
    return event["lines"]
"""

FLOOD = r"""
import sys, time

def handler(event, context):
    end = time.time() + event["seconds"]
    block = "x" * 65535 + "\n"
    while time.time() < end:
        sys.stdout.write(block)
    return "done"
"""


def test_a_chatty_function_waits_for_its_output_and_loses_none_of_it(
    lam: LambdaClient, server: Server, make_function: Any
) -> None:
    name = make_function("numbered", code=zip_code({"app.py": NUMBERED}), Timeout=120)
    count = 2000  # ~1 MB: several seconds' worth at 256 KiB/s
    answer = invoke(lam, name, {"lines": count}, LogType="Tail")
    assert answer["StatusCode"] == 200 and json.loads(answer["Body"]) == count
    tail = base64.b64decode(answer["LogResult"]).decode()
    assert f"line {count - 1:05d} " in tail and "REPORT RequestId" in tail
    assert len(tail) <= 4096
    request_id = answer["ResponseMetadata"]["RequestId"]
    events = server.log_events(name)
    lines = [e["message"] for e in events if e["message"].startswith("line ")]
    assert lines == [f"line {n:05d} " + "." * 480 for n in range(count)]
    assert {e["requestId"] for e in events if e["message"].startswith("line ")} == {request_id}
    notices = [e for e in events if e["message"].startswith("[corral] This environment")]
    assert notices and "faster than 0.25 MiB/s" in notices[0]["message"]


def _p50_of_quiet_invokes(lam: LambdaClient, name: str, seconds: float) -> float:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()
        latencies.append(time.perf_counter() - started)
    return statistics.median(latencies)


def test_three_functions_flooding_their_logs_do_not_slow_a_quiet_one(
    lam: LambdaClient, server: Server, make_function: Any
) -> None:
    quiet = make_function("quiet")
    floods = [
        make_function("flood", code=zip_code({"app.py": FLOOD}), Timeout=120) for _ in range(3)
    ]
    for name in [quiet, *floods]:  # cold starts out of the way
        invoke(lam, name, {"seconds": 0})
    idle_p50 = _p50_of_quiet_invokes(lam, quiet, 3.0)
    process = psutil.Process(server.proc.pid)
    rss = [process.memory_info().rss]
    done: list[str] = []

    def flood(name: str) -> None:
        done.append(json.loads(invoke(lam, name, {"seconds": 5})["Body"]))

    threads = [threading.Thread(target=flood, args=(name,)) for name in floods]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            rss.append(process.memory_info().rss)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    loaded_p50 = _p50_of_quiet_invokes(lam, quiet, 3.5)
    for thread in threads:
        thread.join()
    sampling.set()
    sampler.join()
    assert done == ["done"] * 3
    # Before the fix: 9x slower (every 64 KB of a flood was split line by line on the
    # event loop) and the server grew by 500 MB.
    assert loaded_p50 <= 3 * idle_p50, (idle_p50, loaded_p50)
    assert max(rss) - rss[0] < 64 * 2**20
