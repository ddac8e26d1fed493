"""Shared fixtures: a real ``corral serve`` per module, clients, factories."""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from corral.core.settings import Settings
from tests.helpers import (
    OPERATOR,
    ROLE,
    SUBNETS,
    LambdaClient,
    Server,
    echo_zip,
    managed_config,
    returning,
    start_server,
    wait_version_active,
)

_names = itertools.count()

# Tests sign with the keys of the servers they start, never with the environment's, and
# run the same from any directory and any shell: Corral's own settings are theirs to set.
for _variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
    os.environ.pop(_variable, None)
for _field in dataclasses.fields(Settings):
    os.environ.pop(f"CORRAL_{_field.name.upper()}", None)


@pytest.fixture(autouse=True)
def _cli_uses_the_module_server(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``corral`` commands a test runs find its module server's admin key, as they do when
    run where the server keeps its data (``CORRAL_DATA_DIR``). (Not ``AWS_PROFILE``: boto3
    clients made with explicit keys would still look that profile up.)"""
    if "server" in request.fixturenames:
        srv: Server = request.getfixturevalue("server")
        monkeypatch.setenv("CORRAL_DATA_DIR", str(srv.data_dir))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Server]:
    """One Corral server for the tests of a module; stopped with Ctrl+C at the end. A module
    may set ``SERVER_ENV`` (``CORRAL_*`` variables) for its server."""
    srv = start_server(
        tmp_path_factory.mktemp("corral"), **getattr(request.module, "SERVER_ENV", {})
    )
    yield srv
    pids = srv.tree()
    srv.stop(signal.SIGINT)
    # A process may still be on its way out (a slirp4netns tearing down its namespace is
    # seen in disk sleep with its memory already gone): give those a few seconds.
    deadline = time.monotonic() + 10.0
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    leftovers = [_describe(p) for p in alive]
    assert not leftovers, f"processes left behind: {leftovers}\n{srv.log()[-3000:]}"


def _describe(pid: int) -> str:
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            return (
                f"{pid} ({proc.name()}, {proc.status()}, parent {proc.ppid()}): "
                f"{' '.join(proc.cmdline())[:200]}"
            )
    except psutil.Error:
        return str(pid)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def lam(server: Server, request: pytest.FixtureRequest) -> LambdaClient:
    """A boto3 client for the module's server. A module that sets ``UNCHECKED_CLIENT =
    True`` gets one that skips botocore's own checks, so Corral's are what is tested."""
    unchecked = getattr(request.module, "UNCHECKED_CLIENT", False)
    return server.client(parameter_validation=not unchecked)


@pytest.fixture(scope="module")
def provider_arn(lam: LambdaClient) -> str:
    created = lam.create_capacity_provider(
        CapacityProviderName=f"cp-{next(_names)}", VpcConfig=SUBNETS, PermissionsConfig=OPERATOR
    )
    arn: str = created["CapacityProvider"]["CapacityProviderArn"]
    return arn


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


@pytest.fixture
def make_function(lam: LambdaClient) -> Iterator[Any]:
    """Create functions (default: the echo handler on python3.11); delete them afterwards."""
    created: list[str] = []

    def make(prefix: str = "fn", code: bytes | None = None, **kwargs: Any) -> str:
        name = unique(prefix)
        params: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": "python3.11",
            "Role": ROLE,
            "Handler": "app.handler",
            "Code": {"ZipFile": code if code is not None else echo_zip()},
        }
        params.update(kwargs)
        lam.create_function(**params)
        created.append(name)
        return name

    yield make
    for name in created:
        try:
            lam.delete_function(FunctionName=name)
        except lam.exceptions.ResourceNotFoundException:
            pass


@pytest.fixture
def two_versions(lam: LambdaClient, make_function: Any) -> str:
    """A classic function with versions 1 (returns 1) and 2 (returns 2)."""
    name: str = make_function("alias", code=returning(1))
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    lam.update_function_code(FunctionName=name, ZipFile=returning(2))
    assert lam.publish_version(FunctionName=name)["Version"] == "2"
    return name


def published_managed(
    lam: LambdaClient,
    make_function: Any,
    provider_arn: str,
    prefix: str,
    code: bytes,
    *,
    slots: int,
    tags: dict[str, str] | None = None,
    environments: int = 3,
    maximum: int | None = None,
    **kwargs: Any,
) -> str:
    """A Managed Instances function (2 GiB, ``slots`` per environment) whose version 1 is
    Active, then held at ``environments`` (pinned, or up to ``maximum``)."""
    name: str = make_function(
        prefix,
        code=code,
        MemorySize=2048,
        CapacityProviderConfig=managed_config(provider_arn, slots),
        **({"Tags": tags} if tags else {}),
        **kwargs,
    )
    lam.publish_version(FunctionName=name)
    wait_version_active(lam, name, "1")
    lam.put_function_scaling_config(
        FunctionName=name,
        Qualifier="1",
        FunctionScalingConfig={
            "MinExecutionEnvironments": environments,
            "MaxExecutionEnvironments": environments if maximum is None else maximum,
        },
    )
    return name


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    tmp_path.chmod(0o777)
    return tmp_path
