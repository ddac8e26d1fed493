"""The ``corral`` command as a user types it: ``invoke`` with files, Event and DryRun, errors
with ``--json``, ``status``, and ``runtimes list|install`` against fake interpreters.

The runtime tests never download anything: the "host interpreters" are shell scripts that
answer the version probe, and the one that installs writes a virtualenv whose ``python``
accepts ``pip install`` without doing it.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from corral.cli import main
from corral.sandbox import interpreters
from tests.helpers import (
    LambdaClient,
    Server,
    echo_zip,
    managed_config,
    start_server,
    start_server_in,
    status_of,
    wait_version_active,
)


def corral(*args: str, **env: str) -> Result:
    """Run ``corral ARGS`` (in this process, to save the start-up) with a wide terminal."""
    return CliRunner().invoke(main.app, list(args), env={"COLUMNS": "250", **env})


def exited(result: Result, code: int) -> bool:
    """Whether the command ended with ``code`` on its own, rather than crashing."""
    if code == 0:
        return result.exit_code == 0 and result.exception is None
    return result.exit_code == code and isinstance(result.exception, SystemExit)


# corral invoke -------------------------------------------------------------------------------


def test_invoke_reads_the_payload_from_a_file_and_prints_logs_to_stderr(
    server: Server, make_function: Any, tmp: Path
) -> None:
    name = make_function("clifile")
    event = tmp / "event.json"
    event.write_text('{"from": "file"}')
    # A real process: the command leaves the payload file for the interpreter to close.
    done = subprocess.run(
        [
            sys.executable, "-m", "corral", "invoke", name, "--payload", f"@{event}",
            "--log-type", "Tail", "--endpoint-url", server.url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["event"] == {"from": "file"}
    assert "REPORT RequestId" in done.stderr


@pytest.mark.parametrize(
    ("invocation_type", "status"), [("Event", 202), ("DryRun", 204)], ids=["event", "dry-run"]
)
def test_invoke_event_and_dry_run_report_their_status(
    server: Server, make_function: Any, invocation_type: str, status: int
) -> None:
    name = make_function("clitype")
    done = corral(
        "invoke", name, "--invocation-type", invocation_type, "--json",
        "--endpoint-url", server.url,
    )  # fmt: skip
    assert exited(done, 0), done.output
    result = json.loads(done.stdout)
    assert result["StatusCode"] == status
    assert result["Payload"] == ""
    assert result["FunctionError"] is None


def test_invoke_errors_are_printed_as_json_and_exit_1(server: Server) -> None:
    done = corral("invoke", "no-such-function", "--json", "--endpoint-url", server.url)
    assert exited(done, 1), done.output
    result = json.loads(done.stdout)
    assert result["StatusCode"] == 404
    assert result["Error"] == "ResourceNotFoundException"
    assert result["Message"].startswith("Function not found: arn:aws:lambda:")
    assert "error: ResourceNotFoundException: Function not found" in done.stderr
    plain = corral("invoke", "x", "--invocation-type", "Sometimes", "--endpoint-url", server.url)
    assert exited(plain, 1)
    assert plain.stdout == ""
    assert "ValidationException" in plain.stderr


def test_status_explains_an_endpoint_that_is_not_corral(server: Server) -> None:
    done = corral("status", "--endpoint-url", server.url + "/not-here")
    assert exited(done, 1), done.output
    assert "UnknownOperationException: Corral does not serve this operation" in done.stderr


def test_status_lists_the_environments_of_a_managed_version(
    server: Server, lam: LambdaClient, make_function: Any, provider_arn: str
) -> None:
    name = make_function(
        "clilmi", MemorySize=2048, CapacityProviderConfig=managed_config(provider_arn, 1)
    )
    lam.publish_version(FunctionName=name)
    wait_version_active(lam, name, "1")
    done = corral("status", "--endpoint-url", server.url)
    assert exited(done, 0), done.output
    rows = [line for line in done.stdout.splitlines() if f"{name}:1" in line]
    assert len(rows) == 3
    assert all("Ready" in row for row in rows)
    assert provider_arn.rsplit(":", 1)[-1] in done.stdout
    assert "sandbox: container (runc containers" in done.output
    answer = corral("invoke", name, "--qualifier", "1", "--json", "--endpoint-url", server.url)
    assert json.loads(answer.stdout)["ExecutedVersion"] == "1"


def test_status_counts_throttles_per_function(
    server: Server, lam: LambdaClient, make_function: Any
) -> None:
    name = make_function("clithrottle")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(lam.exceptions.TooManyRequestsException):
        lam.invoke(FunctionName=name, Payload=b"{}")
    done = corral("status", "--endpoint-url", server.url)
    assert exited(done, 0), done.output
    assert "throttles since start" in done.stdout
    rows = [line for line in done.stdout.splitlines() if f"{name}:$LATEST" in line]
    assert len(rows) == 1 and "concurrency" in rows[0] and " 1 " in rows[0]


# corral serve --------------------------------------------------------------------------------


def serve(tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``corral serve`` in its own process (it installs uvloop and runs an event loop)."""
    return subprocess.run(
        [sys.executable, "-m", "corral", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CORRAL_DATA_DIR": str(tmp / "data"), "CORRAL_PORT": "0", **env},
    )


def test_serve_refuses_a_malformed_setting(tmp: Path) -> None:
    done = corral("serve", CORRAL_PORT="nine-thousand", CORRAL_DATA_DIR=str(tmp / "data"))
    assert exited(done, 2), done.output
    assert "CORRAL_PORT='nine-thousand' is not a valid int" in done.output


def test_serve_refuses_an_unknown_sandbox(tmp: Path) -> None:
    done = serve(tmp, CORRAL_SANDBOX="runc")
    assert done.returncode == 2, done.stderr
    assert "CORRAL_SANDBOX='runc' is not one of auto, container, process" in done.stderr


def test_serve_refuses_containers_where_they_cannot_run_and_says_why(tmp: Path) -> None:
    done = serve(tmp, CORRAL_SANDBOX="container", CORRAL_RUNC="/nowhere/runc")
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())
    assert "sandbox 'container' cannot run here: '/nowhere/runc' not found" in message
    assert "CORRAL_SANDBOX=process" in message


def test_without_working_containers_auto_falls_back_to_process_and_says_so_loudly(
    tmp: Path,
) -> None:
    srv = start_server(tmp / "data", CORRAL_RUNC="/nowhere/runc")
    try:
        banner = " ".join(srv.log().split())
        assert "warning: sandbox 'process' (containers cannot run here:" in banner
        assert "'/nowhere/runc' not found" in banner
        key = {"CORRAL_DATA_DIR": str(srv.data_dir)}
        done = corral("status", "--endpoint-url", srv.url, **key)
        assert exited(done, 0), done.output
        status = " ".join(done.output.split())
        assert "sandbox: process" in status
        assert "warning: sandbox 'process'" in status and "no isolation" in status
        as_json = json.loads(corral("status", "--json", "--endpoint-url", srv.url, **key).stdout)
        assert as_json["sandbox"] == "process" and as_json["warnings"]
        lam = srv.client()
        lam.create_function(
            FunctionName="plain",
            Runtime="python3.11",
            Role="arn:aws:iam::123456789012:role/r",
            Handler="app.handler",
            Code={"ZipFile": echo_zip()},
        )
        assert status_of(lam.invoke(FunctionName="plain")) == 200  # and it still works
    finally:
        srv.stop()


def test_a_second_server_on_the_same_data_directory_is_refused(server: Server, tmp: Path) -> None:
    done = serve(tmp, CORRAL_DATA_DIR=str(server.data_dir))
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())
    assert f"another Corral (pid {server.proc.pid}) is using the data directory" in message
    assert "Traceback" not in done.stderr
    assert server.client().list_functions()["Functions"] is not None  # the first one serves on


def test_serve_on_a_port_in_use_says_so_without_a_traceback(server: Server, tmp: Path) -> None:
    port = urllib.parse.urlsplit(server.url).port
    done = serve(tmp, CORRAL_PORT=str(port))
    assert done.returncode != 0
    assert "address already in use" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def not_corral() -> Iterator[str]:
    """An HTTP server that answers every request with an HTML 404 page."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = b"<html><body>Not Found</body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, name="not-corral", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_invoke_against_something_that_is_not_corral_fails_cleanly(not_corral: str) -> None:
    done = corral("invoke", "x", "--endpoint-url", not_corral)
    assert exited(done, 1), repr(done.exception)
    assert "error:" in done.stderr


def test_invoke_with_a_missing_payload_file_fails_cleanly(server: Server, tmp: Path) -> None:
    done = corral(
        "invoke", "x", "--payload", f"@{tmp / 'missing.json'}", "--endpoint-url", server.url
    )
    assert exited(done, 1), repr(done.exception)
    assert "missing.json" in done.stderr


# corral runtimes -----------------------------------------------------------------------------

# A host interpreter whose ``-m venv`` makes a virtualenv with a ``python`` that takes
# ``-m pip install ...`` (recording the arguments) and answers the post-install probe.
_INSTALLABLE = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$4/bin"
  cat > "$4/bin/python" <<'EOF'
#!/bin/sh
if [ "$1" = "-m" ]; then echo "$@" >> "$(dirname "$0")/../pip-args"; exit 0; fi
printf '3.13.1\\n/opt/fake-python\\n'
EOF
  chmod +x "$4/bin/python"
  exit 0
fi
echo 3.13.1
"""
_BROKEN_VENV = """#!/bin/sh
if [ "$1" = "-m" ]; then echo "venv exploded" >&2; exit 3; fi
echo 3.12.8
"""


def script(path: Path, text: str, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def installed(runtimes: Path, runtime: str, python: str, client: str) -> None:
    """A runtime as ``corral runtimes install`` leaves it: a marker and ``bin/python``."""
    script(runtimes / runtime / "bin" / "python", "#!/bin/sh\nexit 0\n")
    marker = {"runtime": runtime, "python": python, "base_prefix": "/usr", "awslambdaric": client}
    (runtimes / runtime / "corral-runtime.json").write_text(json.dumps(marker))


@pytest.fixture
def host(tmp: Path) -> dict[str, str]:
    """Fake host interpreters and a runtimes directory holding a ready python3.11.

    python3.12 cannot make a virtualenv, python3.13 installs, python3.14 is really 3.10, and
    a second python3.11 is not executable.
    """
    bin_dir = tmp / "bin"
    script(bin_dir / "python3.12", _BROKEN_VENV)
    script(bin_dir / "python3.13", _INSTALLABLE)
    script(bin_dir / "python3.14", "#!/bin/sh\necho 3.10.2\n")
    script(bin_dir / "python3.11", "#!/bin/sh\necho 3.11.9\n", mode=0o644)
    runtimes = tmp / "runtimes"
    installed(runtimes, "python3.11", "3.11.9", interpreters.AWSLAMBDARIC_VERSION)
    return {"CORRAL_RUNTIMES_DIR": str(runtimes), "CORRAL_PYTHON_PATH": str(bin_dir)}


def row(output: str, runtime: str) -> str:
    return next(line for line in output.splitlines() if f" {runtime} " in line)


def test_runtimes_list_shows_installed_installable_and_missing(host: dict[str, str]) -> None:
    done = corral("runtimes", "list", **host)
    assert exited(done, 0), done.output
    assert host["CORRAL_RUNTIMES_DIR"] in done.stdout
    assert "installed" in row(done.stdout, "python3.11")
    assert "3.11.9" in row(done.stdout, "python3.11")
    assert "installable" in row(done.stdout, "python3.12")
    assert str(Path(host["CORRAL_PYTHON_PATH"]) / "python3.13") in row(done.stdout, "python3.13")
    assert "no interpreter on this host" in row(done.stdout, "python3.14")
    # Node.js runtimes come from npm: installable where npm, cmake, make and g++ are.
    assert "installable" in row(done.stdout, "nodejs22.x")
    assert "Node.js 22.23.5 from npm" in row(done.stdout, "nodejs22.x")
    bare = corral("runtimes", "list", PATH=str(Path(host["CORRAL_PYTHON_PATH"])), **host)
    assert "needs: apt install npm cmake g++ make autoconf automake libtool" in row(
        bare.stdout, "nodejs24.x"
    )


def test_runtimes_install_makes_a_virtualenv_with_the_pinned_runtime_client(
    host: dict[str, str],
) -> None:
    done = corral("runtimes", "install", "--runtime", "python3.13", **host)
    assert exited(done, 0), done.output
    assert "python3.13: ready (Python 3.13.1)" in done.stdout
    venv = Path(host["CORRAL_RUNTIMES_DIR"]) / "python3.13"
    pip = (venv / "pip-args").read_text()
    assert f"awslambdaric=={interpreters.AWSLAMBDARIC_VERSION}" in pip
    assert f"boto3=={interpreters.BOTO3_VERSION}" in pip
    marker = json.loads((venv / "corral-runtime.json").read_text())
    assert marker["python"] == "3.13.1"
    assert marker["base_prefix"] == "/opt/fake-python"
    assert marker["awslambdaric"] == interpreters.AWSLAMBDARIC_VERSION
    listed = corral("runtimes", "list", **host)
    assert "installed" in row(listed.stdout, "python3.13")
    again = corral("runtimes", "install", "--runtime", "python3.13", **host)
    assert "python3.13: ready (Python 3.13.1)" in again.stdout
    assert "creating a virtualenv" not in again.stdout
    forced = corral("runtimes", "install", "--runtime", "python3.13", "--force", **host)
    assert exited(forced, 0)
    assert "python3.13: creating a virtualenv" in forced.stdout


def test_runtimes_install_reports_every_runtime_it_could_not_install(
    host: dict[str, str],
) -> None:
    done = corral(
        "runtimes", "install", "--runtime", "python3.11", "--runtime", "python3.12",
        "--runtime", "python3.14", **host,
    )  # fmt: skip
    assert exited(done, 1), done.output
    assert "python3.11: ready (Python 3.11.9)" in done.stdout
    assert "python3.12: installation failed" in done.stdout
    assert "venv exploded" in done.stdout
    assert "python3.14: no host interpreter found; skipped" in done.stdout


def test_runtimes_install_without_any_interpreter_says_what_to_do(tmp: Path) -> None:
    empty = tmp / "empty"
    empty.mkdir()
    done = corral(
        "runtimes",
        "install",
        CORRAL_RUNTIMES_DIR=str(tmp / "runtimes"),
        CORRAL_PYTHON_PATH=str(empty),
        PATH=str(empty),  # nor npm and the tools Node.js runtimes need
    )
    assert exited(done, 1), done.output
    assert "Node.js runtimes skipped: they need npm, cmake, g++, make, autoconf" in done.stdout
    assert "No python3.11+ interpreter found." in done.stdout


def test_find_host_interpreters_skips_wrong_versions_and_takes_the_first_match(
    tmp: Path,
) -> None:
    first, second = tmp / "first", tmp / "second"
    script(first / "python3.12", "#!/bin/sh\necho 3.11.4\n")
    script(first / "python3.13", "#!/bin/sh\nexit 1\n")
    script(second / "python3.12", "#!/bin/sh\necho 3.12.8\n")
    script(second / "python3.13", "#!/bin/sh\necho 3.13.0\n")
    script(tmp / "third" / "python3.13", "#!/bin/sh\necho 3.13.5\n")
    search = os.pathsep.join(str(d) for d in (tmp / "nowhere", first, second, tmp / "third"))
    assert interpreters.find_host_interpreters(search) == {
        "python3.12": second / "python3.12",
        "python3.13": second / "python3.13",
    }


# the README's two commands in a row (issue #12) ---------------------------------------------


def _bare_env() -> dict[str, str]:
    """The environment of a new shell: no AWS keys or profile, no Corral settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CORRAL_"))} | {
        "COLUMNS": "250"
    }


def _corral_in(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        cwd=cwd,
        env=_bare_env() | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_data_directory_key_is_only_sent_to_the_server_it_belongs_to(tmp: Path) -> None:
    # ./scripts/run leaves .corral/ with its server's admin key; a later command against
    # another server (./scripts/test's) must not sign with it.
    home = tmp / "checkout"
    home.mkdir()
    first = start_server_in(home, Path(".corral"), {})
    assert first.stop() == 0
    assert (home / ".corral" / "credentials").exists()
    assert not (home / ".corral" / "server.json").exists()  # gone with its server
    other = start_server(tmp / "other")
    try:
        explicit = _corral_in(
            home,
            "status",
            "--json",
            "--endpoint-url",
            other.url,
            AWS_SHARED_CREDENTIALS_FILE=str(other.credentials_path),
            AWS_PROFILE="corral",
        )
        assert explicit.returncode == 0, explicit.stderr
        unsigned = _corral_in(home, "status", "--endpoint-url", other.url)
        assert unsigned.returncode == 1
        assert "MissingAuthenticationTokenException" in unsigned.stderr
        assert "used only for the server it belongs to" in unsigned.stderr
    finally:
        assert other.stop() == 0
    again = start_server_in(home, Path(".corral"), {})
    try:
        found = _corral_in(home, "status", "--json")  # no endpoint, no key given
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["sandbox"] in ("container", "process")
    finally:
        assert again.stop() == 0
