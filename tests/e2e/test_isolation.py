"""What a function can and cannot reach from inside its container (the ``container`` sandbox).

Every test runs real functions in real runc containers and asks them to try: read another
function's code and secrets, see the host's processes, write outside /tmp, read Corral's data
directory, reach the Runtime API of another environment or the host's loopback, use more
memory, disk or processes than it was given. Another function keeps running meanwhile.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.helpers import LambdaClient, Server, invoke, wait_for, zip_code

PROBE = r"""
import errno, json, os, socket, threading, time

def _error(exc):
    return errno.errorcode.get(exc.errno, str(exc))

def handler(event, context):
    probe = event["probe"]
    if probe == "read":
        out = {}
        for path in event["paths"]:
            try:
                if os.path.isdir(path):
                    out[path] = sorted(os.listdir(path))
                else:
                    with open(path) as f:
                        out[path] = f.read()[:200]
            except OSError as exc:
                out[path] = _error(exc)
        return out
    if probe == "processes":
        found = {}
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        found[pid] = f.read().replace(b"\0", b" ").decode()
                except OSError as exc:
                    found[pid] = _error(exc)
        environ = {}
        for pid in found:
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    environ[pid] = f.read().decode(errors="replace")
            except OSError as exc:
                environ[pid] = _error(exc)
        return {"processes": found, "environ": environ, "uid": os.getuid()}
    if probe == "write":
        out = {}
        for path in event["paths"]:
            try:
                with open(path, "w") as f:
                    f.write("x")
                out[path] = "written"
            except OSError as exc:
                out[path] = _error(exc)
        return out
    if probe == "connect":
        out = {}
        for host, port in event["targets"]:
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect((host, port))
                s.sendall(event.get("send", "").encode())
                out[f"{host}:{port}"] = "connected"
            except OSError as exc:
                out[f"{host}:{port}"] = _error(exc)
            finally:
                s.close()
        return out
    if probe == "listeners":
        rows = open("/proc/net/tcp").read().splitlines()[1:]
        return [r.split()[1] for r in rows if r.split()[3] == "0A"]
    if probe == "fill_tmp":
        chunk = b"x" * (1024 * 1024)
        written = 0
        try:
            with open("/tmp/fill", "wb") as f:
                while written < event["limit_mb"]:
                    f.write(chunk)
                    f.flush()
                    written += 1
        except OSError as exc:
            os.remove("/tmp/fill")
            return {"written_mb": written, "error": _error(exc)}
        os.remove("/tmp/fill")
        return {"written_mb": written, "error": None}
    if probe == "threads":
        started, stop = 0, threading.Event()
        try:
            while started < event["limit"]:
                threading.Thread(target=stop.wait, daemon=True).start()
                started += 1
            error = None
        except RuntimeError as exc:
            error = str(exc)
        stop.set()
        return {"started": started, "error": error}
    if probe == "allocate":
        hoard = bytearray(event["mb"] * 1024 * 1024)
        for i in range(0, len(hoard), 4096):
            hoard[i] = 1
        return {"allocated_mb": event["mb"]}
    if probe == "sleep":
        time.sleep(event["seconds"])
        return {"slept": event["seconds"]}
    return {"unknown": probe}
"""

SECRET = "s3cr3t-of-the-neighbour"


@pytest.fixture(scope="module")
def neighbour(lam: LambdaClient) -> Iterator[str]:
    """A function with secret code and a secret variable, kept running (warm)."""
    name = "neighbour"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role="arn:aws:iam::123456789012:role/r",
        Handler="app.handler",
        Code={
            "ZipFile": zip_code(
                {
                    "app.py": PROBE,
                    "secret.py": f"TOKEN = {SECRET!r}\n",
                }
            )
        },
        Environment={"Variables": {"NEIGHBOUR_TOKEN": SECRET}},
    )
    assert invoke(lam, name, {"probe": "sleep", "seconds": 0})["StatusCode"] == 200
    yield name
    lam.delete_function(FunctionName=name)


@pytest.fixture(scope="module")
def probe(lam: LambdaClient) -> Iterator[str]:
    name = "prober"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role="arn:aws:iam::123456789012:role/r",
        Handler="app.handler",
        Code={"ZipFile": zip_code({"app.py": PROBE})},
        MemorySize=256,
        Timeout=60,
    )
    yield name
    lam.delete_function(FunctionName=name)


def configure(lam: LambdaClient, name: str, **settings: Any) -> None:
    """Change a function's settings and wait until they apply."""
    lam.update_function_configuration(FunctionName=name, **settings)
    wait_for(
        lambda: (
            lam.get_function_configuration(FunctionName=name)["LastUpdateStatus"] == "Successful"
        )
    )


def ask(lam: LambdaClient, name: str, **event: Any) -> Any:
    response = invoke(lam, name, event)
    body = json.loads(response["Body"])
    assert "FunctionError" not in response, body
    return body


def test_a_function_cannot_read_another_functions_code_or_variables(
    lam: LambdaClient, server: Server, neighbour: str, probe: str
) -> None:
    neighbour_code = next(server.data_dir.glob("code/*/secret.py"))
    seen = ask(lam, probe, probe="read", paths=[str(neighbour_code), "/var/task"])
    assert seen[str(neighbour_code)] == "ENOENT"  # the host's code store is not there
    assert seen["/var/task"] == ["app.py"]  # its own code only
    inside = ask(lam, probe, probe="processes")
    assert SECRET not in json.dumps(inside)  # no neighbour's process, so no environ
    # The neighbour, meanwhile, still has its secret and runs.
    assert "NEIGHBOUR_TOKEN=" + SECRET in json.dumps(ask(lam, neighbour, probe="processes"))


def test_a_function_sees_only_its_own_processes_as_a_non_root_user(
    lam: LambdaClient, server: Server, probe: str
) -> None:
    inside = ask(lam, probe, probe="processes")
    assert inside["uid"] == 993  # sbx_user1051, as on Lambda
    assert set(inside["processes"]) == {"1"}  # the runtime, pid 1 of its own namespace
    assert "awslambdaric" in inside["processes"]["1"]
    assert server.proc.pid > 1 and str(server.proc.pid) not in inside["processes"]


def test_a_function_can_write_only_to_tmp(lam: LambdaClient, probe: str) -> None:
    paths = ["/tmp/ok", "/var/task/x", "/var/runtime/x", "/etc/x", "/x", "/usr/x", "/run/corral/x"]
    written = ask(lam, probe, probe="write", paths=paths)
    assert written.pop("/tmp/ok") == "written"
    assert set(written.values()) == {"EROFS"}, written


def test_a_function_cannot_read_corrals_data_directory(
    lam: LambdaClient, server: Server, probe: str
) -> None:
    data = server.data_dir.resolve()
    seen = ask(lam, probe, probe="read", paths=[str(data), str(data / "corral.db")])
    assert set(seen.values()) == {"ENOENT"}


def test_a_function_cannot_reach_other_runtime_apis_or_the_hosts_loopback(
    lam: LambdaClient, server: Server, probe: str
) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    # Its network namespace holds one listener: its own Runtime API.
    assert ask(lam, probe, probe="listeners") == ["0100007F:2329"]  # 127.0.0.1:9001
    tried = ask(lam, probe, probe="connect", targets=[["127.0.0.1", port], ["10.0.2.2", port]])
    assert tried == {f"127.0.0.1:{port}": "ECONNREFUSED", f"10.0.2.2:{port}": "ENETUNREACH"}
    # Seen from the host, Corral listens on its API port only: every Runtime API socket
    # lives in its environment's own namespace.
    listening = {
        c.laddr.port
        for c in psutil.Process(server.proc.pid).net_connections("tcp")
        if c.status == psutil.CONN_LISTEN
    }
    assert listening == {port}


def _host_address() -> str:
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    raise AssertionError("this host has no non-loopback IPv4 address to test egress with")


def test_a_function_keeps_outbound_network_access(lam: LambdaClient, probe: str) -> None:
    host = _host_address()
    received: list[bytes] = []
    with socket.create_server((host, 0)) as listener:
        listener.settimeout(10)

        def accept() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                received.append(conn.recv(100))

        waiter = threading.Thread(target=accept)
        waiter.start()
        port = listener.getsockname()[1]
        tried = ask(lam, probe, probe="connect", targets=[[host, port]], send="hello")
        waiter.join(timeout=15)
    assert tried == {f"{host}:{port}": "connected"}
    assert received == [b"hello"]


def test_tmp_holds_the_ephemeral_storage_and_no_more(lam: LambdaClient, probe: str) -> None:
    lam.update_function_configuration(
        FunctionName=probe, MemorySize=1024, EphemeralStorage={"Size": 600}
    )
    from tests.helpers import wait_for

    wait_for(
        lambda: (
            lam.get_function_configuration(FunctionName=probe)["LastUpdateStatus"] == "Successful"
        )
    )
    filled = ask(lam, probe, probe="fill_tmp", limit_mb=700)
    assert filled == {"written_mb": 600, "error": "ENOSPC"}


def test_processes_and_threads_are_capped_at_lambdas_1024(lam: LambdaClient, probe: str) -> None:
    spawned = ask(lam, probe, probe="threads", limit=2000)
    assert 900 < spawned["started"] < 1024
    assert spawned["error"] == "can't start new thread"
    assert ask(lam, probe, probe="sleep", seconds=0) == {"slept": 0}  # and it recovers


def test_a_function_over_its_memory_gets_runtime_out_of_memory_and_others_carry_on(
    lam: LambdaClient, neighbour: str, probe: str
) -> None:
    lam.update_function_configuration(FunctionName=probe, MemorySize=256)
    from tests.helpers import wait_for

    wait_for(
        lambda: (
            lam.get_function_configuration(FunctionName=probe)["LastUpdateStatus"] == "Successful"
        )
    )
    assert ask(lam, probe, probe="allocate", mb=100) == {"allocated_mb": 100}
    response = invoke(lam, probe, {"probe": "allocate", "mb": 400})
    error = json.loads(response["Body"])
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.OutOfMemory"
    assert error["errorMessage"].endswith("Runtime exited with error: signal: killed")
    assert ask(lam, neighbour, probe="sleep", seconds=0) == {"slept": 0}
    assert ask(lam, probe, probe="allocate", mb=100) == {"allocated_mb": 100}  # a new one
