"""Test helpers: start a real ``corral serve``, build zips, make boto3 clients.

These never ship in the package.
"""

from __future__ import annotations

import configparser
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import boto3
import botocore.exceptions
import httpx
import psutil
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from typer.testing import CliRunner

from corral.cli import main

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_lambda.type_defs import (
        CapacityProviderPermissionsConfigTypeDef,
        CapacityProviderVpcConfigTypeDef,
    )
else:
    LambdaClient = Any

__all__ = [
    "ECHO",
    "OPERATOR",
    "ROLE",
    "SUBNETS",
    "LambdaClient",
    "Server",
    "client",
    "echo_zip",
    "error_of",
    "eventually",
    "invoke",
    "raw",
    "returning",
    "run_aws",
    "sign",
    "start_server",
    "start_server_in",
    "wait_for",
    "metric",
    "corral_cli",
    "wait_version_active",
    "zip_code",
]

ROLE = "arn:aws:iam::123456789012:role/test"
SUBNETS: CapacityProviderVpcConfigTypeDef = {
    "SubnetIds": ["subnet-0123456789abcdef0"],
    "SecurityGroupIds": [],
}
OPERATOR: CapacityProviderPermissionsConfigTypeDef = {
    "CapacityProviderOperatorRoleArn": "arn:aws:iam::123456789012:role/operator"
}

ECHO = """
import json, os, time

def handler(event, context):
    print("handling", context.aws_request_id, "in", os.getpid())
    if isinstance(event, dict):
        if event.get("sleep"):
            time.sleep(event["sleep"])
        if event.get("fail"):
            raise ValueError(event["fail"])
        if event.get("mark"):
            print("MARK", event["mark"], context.aws_request_id)
        if event.get("big"):
            return "x" * event["big"]
    cc = context.client_context
    return {
        "event": event,
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "client_context": cc.custom if cc is not None else None,
        "env": {k: v for k, v in os.environ.items() if k.startswith(("AWS_LAMBDA", "MY_"))},
    }
"""


def zip_code(files: dict[str, str]) -> bytes:
    """A zip holding ``files`` (name -> source)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, source in files.items():
            archive.writestr(name, source)
    return buffer.getvalue()


def echo_zip() -> bytes:
    return zip_code({"app.py": ECHO})


def client(url: str, key: tuple[str, str], **config: Any) -> LambdaClient:
    """A boto3 Lambda client for Corral signing with ``key`` (access key id, secret) that
    does not retry (so throttles are seen)."""
    settings: dict[str, Any] = {
        "retries": {"total_max_attempts": 1},
        "max_pool_connections": 64,
        "read_timeout": 120,
    }
    settings.update(config)
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(**settings),
    )


@dataclass
class Server:
    """A running ``corral serve`` subprocess."""

    url: str
    proc: subprocess.Popen[str]
    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    log_file: IO[str] | None = None
    clients: list[LambdaClient] = field(default_factory=list)

    def client(self, key: tuple[str, str] | None = None, **config: Any) -> LambdaClient:
        """A client of this server (signing with its admin key unless ``key`` is given),
        closed when the server stops (its pooled connections would otherwise be reported
        unclosed whenever the garbage collector finds them)."""
        made = client(self.url, key or self.admin_key, **config)
        self.clients.append(made)
        return made

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "credentials"

    @property
    def admin_key(self) -> tuple[str, str]:
        """The admin key the server wrote to ``<data-dir>/credentials``."""
        parser = configparser.RawConfigParser()
        parser.read(self.credentials_path)
        return parser["corral"]["aws_access_key_id"], parser["corral"]["aws_secret_access_key"]

    def cli_env(self) -> dict[str, str]:
        """The environment under which the AWS CLI and ``corral`` use the admin key."""
        return {
            **os.environ,
            "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_path),
            "AWS_PROFILE": "corral",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def signed(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        key: tuple[str, str] | None = None,
    ) -> dict[str, str]:
        """``headers`` plus a SigV4 signature of the request by ``key`` (default: admin)."""
        return sign(method, self.url + path, body, headers or {}, key or self.admin_key)

    def get(self, path: str, **params: str) -> httpx.Response:
        """A signed ``GET`` of one of Corral's own paths."""
        url = str(httpx.URL(self.url + path, params=params)) if params else self.url + path
        return httpx.get(url, headers=sign("GET", url, b"", {}, self.admin_key), timeout=10)

    def tree(self) -> set[int]:
        """Pids of the server and everything it started."""
        try:
            root = psutil.Process(self.proc.pid)
            return {root.pid} | {p.pid for p in root.children(recursive=True)}
        except psutil.NoSuchProcess:
            return set()

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 60.0) -> int:
        """Signal the server and wait for it; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            for made in self.clients:
                made.close()
            self.clients.clear()
            self.close_files()

    def close_files(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.log_file is not None:
            self.log_file.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self, function: str, **params: str) -> list[dict[str, Any]]:
        """What ``function`` logged (``GET /corral/v1/logs``), oldest first."""
        response = self.get("/corral/v1/logs", **{"function": function, "limit": "10000", **params})
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    def log_messages(self, function: str) -> list[str]:
        """The messages ``function`` logged, oldest first."""
        return [event["message"] for event in self.log_events(function)]

    def state(self) -> dict[str, Any]:
        """What ``/corral/v1/state`` reports."""
        response = self.get("/corral/v1/state")
        response.raise_for_status()
        state: dict[str, Any] = response.json()
        return state

    def environments(self, function: str, version: str = "1") -> list[dict[str, Any]]:
        """The Managed Instances environments of one version, as ``corral status`` lists them."""
        return [
            e
            for p in self.state()["capacityProviders"]
            for i in p["instances"]
            for e in i["environments"]
            if e["functionArn"].endswith(f":{function}:{version}")
        ]

    def marks(self, function: str, token: str) -> list[str]:
        """Request ids of the invocations that ran the echo function with ``{"mark": token}``."""
        prefix = f"MARK {token} "
        return [m.split()[2] for m in self.log_messages(function) if m.startswith(prefix)]


def start_server(data_dir: Path, **env: str) -> Server:
    """Start ``corral serve`` on a free loopback port and wait until it serves."""
    return start_server_in(None, data_dir, env)


def start_server_in(cwd: Path | None, data_dir: Path, env: dict[str, str]) -> Server:
    """``start_server`` run from ``cwd`` (a relative ``data_dir`` is relative to it, as
    for a user who runs ``corral serve`` in a directory)."""
    given = data_dir
    if cwd is not None and not data_dir.is_absolute():
        data_dir = cwd / data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    full_env.update(
        {
            "CORRAL_PORT": "0",
            "CORRAL_DATA_DIR": str(given),
            "CORRAL_SCALE_INTERVAL_S": "0.2",
            "CORRAL_INSTANCE_LAUNCH_DELAY_S": "0",
            "CORRAL_DRAIN_TIMEOUT_S": "10",
            "CORRAL_ASYNC_RETRY_DELAY_S": "0.5",
            "CORRAL_LOG_LEVEL": os.environ.get("TEST_CORRAL_LOG_LEVEL", "info"),
        }
    )
    full_env.update(env)
    log_path = data_dir / f"server-{time.time_ns()}.log"
    log_file = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "serve"],
        stdout=subprocess.PIPE,
        stderr=log_file,
        env=full_env,
        text=True,
        cwd=cwd,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("Corral is serving on "):
            url = line.split()[-1]
            _keep_reading(proc.stdout, log_path.with_suffix(".stdout"))
            return Server(url, proc, data_dir, log_path, env, log_file)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    proc.wait()
    proc.stdout.close()
    log_file.close()
    raise RuntimeError(f"corral serve did not start:\n{log_path.read_text()}")


def run_aws(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """``aws lambda ARGS`` (the AWS CLI, no retries) against ``server``, with its admin key."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "awscli",
            "lambda",
            *args,
            "--endpoint-url",
            server.url,
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=dict(server.cli_env(), AWS_MAX_ATTEMPTS="1"),
        timeout=120,
    )


def _keep_reading(stream: IO[str], path: Path) -> None:
    """Copy what the server prints after its banner to ``path`` (a pipe nobody reads fills
    up, and then the server's next print would block)."""

    def copy() -> None:
        with open(path, "w") as out:
            try:
                for line in stream:
                    out.write(line)
                    out.flush()
            except (ValueError, OSError):  # the stream was closed by Server.stop
                pass

    threading.Thread(target=copy, name="server-stdout", daemon=True).start()


def error_of(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    """Call and return ``(error name, HTTP status, message)`` of the error it must raise."""
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as exc:
        response = exc.response
        return (
            response["Error"]["Code"],
            response["ResponseMetadata"]["HTTPStatusCode"],
            response["Error"].get("Message", ""),
        )
    raise AssertionError(f"{call} did not fail")


def returning(value: int) -> bytes:
    """The zip of a handler that returns ``value``."""
    return zip_code({"app.py": f"def handler(event, context):\n    return {value}\n"})


def sign(
    method: str, url: str, body: bytes, headers: dict[str, str], key: tuple[str, str]
) -> dict[str, str]:
    """``headers`` plus the SigV4 headers botocore would add for this request."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(Credentials(*key), "lambda", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def raw(
    server: Server,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    signed: bool = True,
) -> tuple[int, str, dict[str, Any]]:
    """``(status, x-amzn-ErrorType, JSON body)`` of a raw HTTP request to ``server``,
    signed by its admin key unless ``signed`` is false."""
    if signed:
        headers = server.signed(method, path, body or b"", headers)
    request = urllib.request.Request(
        server.url + path, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request) as response:
            data = response.read()
            return response.status, "", json.loads(data) if data else {}
    except urllib.error.HTTPError as exc:
        with exc:  # an error answer holds its connection open until closed
            data = exc.read()
        return exc.code, exc.headers.get("x-amzn-ErrorType", ""), json.loads(data) if data else {}


def pin_environments(lam: LambdaClient, name: str, count: int, qualifier: str = "1") -> None:
    """Fix a Managed Instances version's environments at ``count`` (min = max)."""
    lam.put_function_scaling_config(
        FunctionName=name,
        Qualifier=qualifier,
        FunctionScalingConfig={
            "MinExecutionEnvironments": count,
            "MaxExecutionEnvironments": count,
        },
    )


def wait_for(predicate: Any, timeout_s: float = 30.0, interval_s: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; return its value or fail."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


def invoke(lam: LambdaClient, name: str, event: Any = None, **kwargs: Any) -> dict[str, Any]:
    """Invoke and read the payload: the answer as a dict with ``Body`` (bytes) added."""
    payload = json.dumps(event if event is not None else {})
    response = lam.invoke(FunctionName=name, Payload=payload, **kwargs)
    result: dict[str, Any] = dict(response)
    result["Body"] = response["Payload"].read()
    return result


def wait_version_active(lam: LambdaClient, name: str, qualifier: str) -> dict[str, Any]:
    """Use botocore's own waiter, as a user would."""
    waiter_config: Any = {"Delay": 0.2, "MaxAttempts": 600}  # botocore sleeps any number
    lam.get_waiter("published_version_active").wait(
        FunctionName=name, Qualifier=qualifier, WaiterConfig=waiter_config
    )
    config: dict[str, Any] = dict(
        lam.get_function_configuration(FunctionName=name, Qualifier=qualifier)
    )
    return config


async def eventually(predicate: Any, timeout_s: float = 10.0) -> None:
    """Let the event loop run until ``predicate()`` holds (what it waits for happens in
    loop callbacks); fail after ``timeout_s``."""
    import asyncio

    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.005)


def status_of(answer: Any) -> int:
    """An Invoke answer's status, its payload read (an unread payload holds its connection,
    which is then closed only by the garbage collector, with a ResourceWarning)."""
    answer["Payload"].read()
    status: int = answer["StatusCode"]
    return status


def managed_config(provider_arn: str, concurrency: int = 4) -> Any:
    """A ``CapacityProviderConfig`` for Lambda Managed Instances."""
    return {
        "LambdaManagedInstancesCapacityProviderConfig": {
            "CapacityProviderArn": provider_arn,
            "PerExecutionEnvironmentMaxConcurrency": concurrency,
        }
    }


def metric(server: Server, name: str, **labels: str) -> float:
    """One series of ``GET /metrics`` (0 when absent)."""
    text = server.get("/metrics").text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def corral_cli(server: Server, *args: str) -> Any:
    """``corral ARGS --endpoint-url URL`` in this process, with the admin key exported."""
    return CliRunner().invoke(
        main.app,
        [*args, "--endpoint-url", server.url],
        env={"COLUMNS": "250", **server.cli_env()},
    )
