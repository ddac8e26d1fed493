"""Scale to zero (issue #15.2): the capacity provider tag ``corral:idle-timeout-s``, off by
default (AWS keeps every version's minimum running).

After that long without an invocation a version on the provider drops to no environment and
its instances, left empty, terminate; it stays ``Active``. The next invocation starts an
environment (and an instance) and waits for it: a cold start, reported with ``Init Duration``
as on classic Lambda. Every function here shares one wait of the minimum timeout, 60 s.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from typer.testing import CliRunner

from corral.cli import main
from tests.conftest import published_managed, unique
from tests.helpers import (
    OPERATOR,
    SUBNETS,
    LambdaClient,
    Server,
    echo_zip,
    wait_for,
    zip_code,
)

# Empty instances terminate a second after their last environment (AWS's rule, shortened).
SERVER_ENV = {"CORRAL_SCALE_IN_COOLDOWN_S": "1"}
IDLE_S = 60
# Its init succeeds until the moment given in FAIL_AFTER (a dependency that went away).
FAILS_LATER = zip_code(
    {
        "app.py": "import os, time\n"
        "if time.time() > float(os.environ['FAIL_AFTER']):\n"
        "    raise RuntimeError('the config service is down')\n\n"
        "def handler(event, context):\n    return 'ok'\n"
    }
)


def provider(lam: LambdaClient, tags: dict[str, str]) -> str:
    arn: str = lam.create_capacity_provider(
        CapacityProviderName=unique("zero"),
        VpcConfig=SUBNETS,
        PermissionsConfig=OPERATOR,
        Tags=tags,
    )["CapacityProvider"]["CapacityProviderArn"]
    return arn


def live_instances(server: Server, provider_arn: str) -> list[dict[str, Any]]:
    (found,) = [p for p in server.state()["capacityProviders"] if p["arn"] == provider_arn]
    return [i for i in found["instances"] if i["state"] != "Terminated"]


def asleep(server: Server) -> list[str]:
    return [arn.split(":function:")[1] for arn in server.state()["scaledToZero"]]


def tail(answer: dict[str, Any]) -> str:
    return base64.b64decode(answer["LogResult"]).decode()


def test_an_idle_version_scales_to_zero_and_its_next_invocation_starts_it_again(
    lam: LambdaClient, make_function: Any, server: Server
) -> None:
    zero = provider(lam, {"corral:idle-timeout-s": str(IDLE_S)})
    always = provider(lam, {})
    sleepy = published_managed(
        lam, make_function, zero, "sleepy", echo_zip(), slots=2, environments=1
    )
    events = published_managed(
        lam, make_function, zero, "events", echo_zip(), slots=2, environments=1
    )
    broken = published_managed(
        lam,
        make_function,
        zero,
        "broken",
        FAILS_LATER,
        slots=2,
        environments=1,
        Environment={"Variables": {"FAIL_AFTER": str(time.time() + 20)}},
    )
    awake = published_managed(lam, make_function, always, "awake", echo_zip(), slots=2)
    for name in (sleepy, events, awake):
        answer = lam.invoke(FunctionName=name, Qualifier="1")
        assert answer["StatusCode"] == 200 and answer["Payload"].read()
    idle_since = time.monotonic()

    # Idle for the timeout: no environment, no instance, still Active.
    wait_for(
        lambda: {f"{n}:1" for n in (sleepy, events, broken)} <= set(asleep(server)),
        timeout_s=IDLE_S + 30,
    )
    assert time.monotonic() - idle_since >= IDLE_S - 1
    assert wait_for(lambda: not live_instances(server, zero), timeout_s=30)
    for name in (sleepy, events, broken):
        assert server.environments(name) == []
        config = lam.get_function_configuration(FunctionName=name, Qualifier="1")
        assert config["State"] == "Active"
    status = CliRunner().invoke(
        main.app, ["status", "--endpoint-url", server.url], env={"COLUMNS": "250"}
    )
    assert "scales to zero after 60 s idle" in status.stdout
    assert "scaled to zero (the next invocation starts an environment): " in status.stdout
    assert f"{sleepy}:1" in status.stdout
    # Without the tag, AWS's behaviour: the minimum runs on, idle or not.
    assert len(server.environments(awake)) == 3 and live_instances(server, always)
    assert f"{awake}:1" not in asleep(server)

    # The next invocation waits for a cold start instead of failing, and says so.
    started = time.monotonic()
    cold = lam.invoke(FunctionName=sleepy, Qualifier="1", LogType="Tail")
    took = time.monotonic() - started
    assert cold["StatusCode"] == 200 and "FunctionError" not in cold, cold
    assert json.loads(cold["Payload"].read())["request_id"] == cold["ResponseMetadata"]["RequestId"]
    # Managed Instances log in JSON: the report's initDurationMs ("Init Duration" in text).
    assert '"initDurationMs"' in tail(cold)
    assert took >= 0.1  # an instance and an environment were started for it
    assert live_instances(server, zero)
    assert f"{sleepy}:1" not in asleep(server)
    warm = lam.invoke(FunctionName=sleepy, Qualifier="1", LogType="Tail")
    warm["Payload"].read()
    assert warm["StatusCode"] == 200 and "initDurationMs" not in tail(warm)

    # An event wakes its version too; its queue delivers it once an environment is ready.
    assert (
        lam.invoke(
            FunctionName=events,
            Qualifier="1",
            InvocationType="Event",
            Payload=json.dumps({"mark": "woken"}).encode(),
        )["StatusCode"]
        == 202
    )
    wait_for(lambda: server.marks(events, "woken"), timeout_s=60)

    # A woken version whose init now fails: the caller gets the init error, as a cold
    # start's caller does on classic Lambda, rather than a 429 after a long wait.
    failed = lam.invoke(FunctionName=broken, Qualifier="1")
    error = json.loads(failed["Payload"].read())
    assert failed["FunctionError"] == "Unhandled", error
    assert error["errorType"] == "RuntimeError"
    assert "the config service is down" in error["errorMessage"]


def test_the_idle_timeout_tag_is_checked_and_read_live(
    lam: LambdaClient, make_function: Any, server: Server
) -> None:
    arn = provider(lam, {})
    for bad in ("59", "86401", "never"):
        try:
            lam.tag_resource(Resource=arn, Tags={"corral:idle-timeout-s": bad})
        except lam.exceptions.InvalidParameterValueException as exc:
            assert "corral:idle-timeout-s must be a whole number from 60 to 86400" in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")
    lam.tag_resource(Resource=arn, Tags={"corral:idle-timeout-s": "86400"})
    (found,) = [p for p in server.state()["capacityProviders"] if p["arn"] == arn]
    assert found["idleTimeoutS"] == 86400
    lam.untag_resource(Resource=arn, TagKeys=["corral:idle-timeout-s"])
    (found,) = [p for p in server.state()["capacityProviders"] if p["arn"] == arn]
    assert found["idleTimeoutS"] is None
