"""Corral owns the Python workers when asked (issue #15.4 and #15.5): the function tags
``corral:fork-after-init`` (one init, workers forked from it, sharing its memory) and
``corral:kill-on-timeout`` (a worker still running at its deadline is killed and replaced),
both off by default, where the environment runs awslambdaric's own pool as on AWS.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import published_managed
from tests.helpers import LambdaClient, Server, managed_config, wait_for, zip_code

# Init writes a file named after its process and holds INIT_MB of touched memory; the
# handler says which process runs it, which process ran its init, and how many inits ran.
WORKERS = zip_code(
    {
        "app.py": "import glob, os, random, time\n"
        "INIT_PID = os.getpid()\n"
        "open(f'/tmp/init-{INIT_PID}', 'w').close()\n"
        "BALLAST = b'\\x01' * (int(os.environ.get('INIT_MB', '0')) * 1024 * 1024)\n"
        "print('init done in', INIT_PID)\n\n"
        "def handler(event, context):\n"
        "    if event.get('sleep'):\n"
        "        open(f'/tmp/started-{context.aws_request_id}', 'w').write(str(os.getpid()))\n"
        "        time.sleep(event['sleep'])\n"
        "        open(f'/tmp/finished-{context.aws_request_id}', 'w').close()\n"
        "    print('served by', os.getpid())\n"
        "    return {'pid': os.getpid(), 'init_pid': INIT_PID, 'random': random.random(),\n"
        "            'inits': len(glob.glob('/tmp/init-*')),\n"
        "            'finished': sorted(glob.glob('/tmp/finished-*')),\n"
        "            'started': {p[13:]: open(p).read() for p in glob.glob('/tmp/started-*')},\n"
        "            'remaining_ms': context.get_remaining_time_in_millis()}\n"
    }
)
FAILING_INIT = zip_code(
    {"app.py": "raise RuntimeError('no config')\n\ndef handler(e, c):\n    pass\n"}
)


def call(lam: LambdaClient, name: str, event: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = lam.invoke(FunctionName=name, Qualifier="1", Payload=json.dumps(event or {}).encode())
    body: dict[str, Any] = json.loads(answer["Payload"].read())
    if "FunctionError" in answer:
        body["function_error"] = answer["FunctionError"]
    return body


def spread(lam: LambdaClient, name: str, slots: int) -> list[dict[str, Any]]:
    """``slots`` invocations at once, each holding its slot long enough for all to overlap."""
    with ThreadPoolExecutor(slots) as pool:
        return list(pool.map(lambda _: call(lam, name, {"sleep": 0.5}), range(slots)))


def only_environment(server: Server, name: str) -> dict[str, Any]:
    """The version's one environment, once the ones its publish started beyond it are gone."""
    envs: list[dict[str, Any]] = wait_for(
        lambda: e if len(e := server.environments(name)) == 1 else None
    )
    return envs[0]


def environment_memory_mb(server: Server, name: str) -> float:
    env = only_environment(server, name)
    return float(env["memoryUtilization"]) * float(env["memoryMiB"])


@pytest.mark.parametrize("fork", [True, False])
def test_fork_after_init_runs_the_init_once_and_shares_its_memory(
    lam: LambdaClient, make_function: Any, provider_arn: str, server: Server, fork: bool
) -> None:
    tags = {"corral:fork-after-init": "true"} if fork else {}
    name = published_managed(
        lam,
        make_function,
        provider_arn,
        "fork" if fork else "nofork",
        WORKERS,
        slots=4,
        environments=1,
        tags=tags,
        Environment={"Variables": {"INIT_MB": "64"}},
    )
    only_environment(server, name)
    answers = spread(lam, name, 4)
    pids = {a["pid"] for a in answers}
    assert len(pids) == 4, answers  # four workers served at once
    if fork:
        # One init, in a process that serves nothing; every worker was forked from it.
        assert {a["init_pid"] for a in answers} != pids
        assert len({a["init_pid"] for a in answers}) == 1
        assert {a["inits"] for a in answers} == {1}
    else:
        # awslambdaric's pool: each worker ran the init itself.
        assert all(a["init_pid"] == a["pid"] for a in answers)
        assert max(a["inits"] for a in answers) == 4
    # Each worker has its own random sequence, forked or not.
    assert len({a["random"] for a in answers}) == 4
    # The 64 MB the init touched is held once when forked, once per worker otherwise
    # (the environment's cgroup, sampled each second by the agent).
    time.sleep(1.5)
    memory = environment_memory_mb(server, name)
    if fork:
        assert memory < 2 * 64, memory
    else:
        assert memory > 3.5 * 64, memory
    # The init's print went to the environment's log once per init.
    env = only_environment(server, name)
    messages = [e["message"] for e in server.log_events(name, logStream=env["logStream"])]
    assert sum(m.startswith("init done in") for m in messages) == (1 if fork else 4)


def test_fork_after_init_reports_an_init_that_fails_as_awslambdaric_does(
    lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    name = make_function(
        "forkfail",
        code=FAILING_INIT,
        MemorySize=2048,
        CapacityProviderConfig=managed_config(provider_arn, 4),
        Tags={"corral:fork-after-init": "true"},
    )
    lam.publish_version(FunctionName=name)
    config = wait_for(
        lambda: (
            c
            if (c := lam.get_function_configuration(FunctionName=name, Qualifier="1"))["State"]
            != "Pending"
            else None
        ),
        timeout_s=60,
    )
    assert config["State"] == "Failed"
    assert config["StateReasonCode"] == "FunctionError.RuntimeInitError"
    assert "RuntimeError: no config" in config["StateReason"]


@pytest.mark.parametrize("fork", [True, False])
def test_kill_on_timeout_ends_the_late_worker_and_spares_the_others(
    lam: LambdaClient, make_function: Any, provider_arn: str, server: Server, fork: bool
) -> None:
    tags = {"corral:kill-on-timeout": "true"}
    if fork:
        tags["corral:fork-after-init"] = "true"
    name = published_managed(
        lam,
        make_function,
        provider_arn,
        "kill",
        WORKERS,
        slots=2,
        environments=1,
        tags=tags,
        Timeout=3,
    )
    before = only_environment(server, name)
    late: dict[str, Any] = {}

    def run_late() -> None:
        started = time.monotonic()
        late.update(call(lam, name, {"sleep": 30}))
        late["waited"] = time.monotonic() - started

    thread = threading.Thread(target=run_late)
    thread.start()
    time.sleep(1)
    # The neighbour in the other slot runs from 1 s to 3.5 s: across the kill at 3 s.
    neighbour = call(lam, name, {"sleep": 2.5})
    thread.join()
    assert late["errorType"] == "Sandbox.Timedout" and late["function_error"] == "Unhandled"
    assert late["waited"] < 5, late  # the caller got its timeout at the deadline
    assert "function_error" not in neighbour, neighbour  # the other slot's invocation lived
    # The slot is served again, by a fresh worker, in the same environment.
    request_id = late["errorMessage"].split()[1]
    after = spread(lam, name, 2)
    killed = after[0]["started"][request_id]
    assert killed not in {str(a["pid"]) for a in after}, (killed, after)
    time.sleep(3)
    # The killed handler never finished; the environment was neither recycled nor drained.
    assert f"/tmp/finished-{request_id}" not in call(lam, name)["finished"]
    now = only_environment(server, name)
    assert now["id"] == before["id"] and now["state"] == "Ready"
    assert "killed worker" in server.log()


def test_without_kill_on_timeout_the_code_runs_on_as_on_aws(
    lam: LambdaClient, make_function: Any, provider_arn: str, server: Server
) -> None:
    name = published_managed(
        lam, make_function, provider_arn, "nokill", WORKERS, slots=2, environments=1, Timeout=1
    )
    before = only_environment(server, name)
    late = call(lam, name, {"sleep": 2})
    assert late["errorType"] == "Sandbox.Timedout"
    finished = wait_for(lambda: f if (f := call(lam, name)["finished"]) else None, timeout_s=10)
    assert len(finished) == 1  # it ran to its end after its caller got the timeout
    # Its late answer was refused (410), and its environment serves on: a worker whose
    # client reconnects after that answer is not taken for one that exited.
    time.sleep(1)
    assert call(lam, name)["pid"]
    assert [e["id"] for e in server.environments(name)] == [before["id"]]
    assert "a runtime worker exited" not in server.log()


def test_worker_tags_take_true_or_false_only(lam: LambdaClient, make_function: Any) -> None:
    name = make_function("workertags")
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    for tag in ("corral:fork-after-init", "corral:kill-on-timeout"):
        with pytest.raises(lam.exceptions.InvalidParameterValueException, match=tag):
            lam.tag_resource(Resource=arn, Tags={tag: "yes"})
        lam.tag_resource(Resource=arn, Tags={tag: "False"})
    assert lam.list_tags(Resource=arn)["Tags"]["corral:kill-on-timeout"] == "False"
