"""The runtimes Corral can run, each prepared in its own directory under the runtimes dir.

Python (``python3.11`` and later): ``corral runtimes install`` finds a host interpreter for
each, makes a virtualenv for it and installs the official runtime client (``awslambdaric``)
and ``boto3`` into it, as the Lambda base images ship them. Node.js (``nodejs22.x``,
``nodejs24.x``): see ``sandbox.nodejs``. ``RuntimeRegistry`` then maps a runtime name to
its ``Interpreter``: the program (``executable``) and the directory it lives in (``home``,
mounted at ``/var/runtime`` in a container).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AWSLAMBDARIC_VERSION",
    "BOTO3_VERSION",
    "MARKER",
    "NODE_RUNTIMES",
    "PYTHON_RUNTIMES",
    "SUPPORTED_RUNTIMES",
    "Interpreter",
    "RuntimeRegistry",
    "find_host_interpreters",
    "install_runtime",
    "is_node_runtime",
    "run_step",
]

AWSLAMBDARIC_VERSION = "4.2.2"
BOTO3_VERSION = "1.44.8"
PYTHON_RUNTIMES = ("python3.11", "python3.12", "python3.13", "python3.14")
NODE_RUNTIMES = ("nodejs22.x", "nodejs24.x")
SUPPORTED_RUNTIMES = PYTHON_RUNTIMES + NODE_RUNTIMES
MARKER = "corral-runtime.json"


@dataclass(frozen=True)
class Interpreter:
    """A ready runtime: its name, language version and program.

    ``executable`` is ``<home>/bin/python`` or ``<home>/bin/node``; ``prefix`` is a host
    directory the program needs at its own path (a virtualenv's base Python).
    """

    runtime: str
    python_version: str
    executable: Path
    prefix: Path
    client_version: str = ""

    @property
    def home(self) -> Path:
        """The runtime's directory (``/var/runtime`` inside a container)."""
        return self.executable.parent.parent

    @property
    def is_node(self) -> bool:
        return is_node_runtime(self.runtime)


def is_node_runtime(runtime: str) -> bool:
    return runtime.startswith("nodejs")


class RuntimeRegistry:
    """The runtimes installed under one directory."""

    def __init__(self, runtimes_dir: Path) -> None:
        self._dir = runtimes_dir
        self._cache: dict[str, Interpreter] | None = None

    def available(self) -> dict[str, Interpreter]:
        """Installed runtimes by name (read once, then cached)."""
        if self._cache is None:
            self._cache = dict(self._scan())
        return self._cache

    def refresh(self) -> None:
        self._cache = None

    def _scan(self) -> Iterable[tuple[str, Interpreter]]:
        for runtime in SUPPORTED_RUNTIMES:
            venv = self._dir / runtime
            marker = venv / MARKER
            executable = venv / "bin" / ("node" if is_node_runtime(runtime) else "python")
            if not marker.is_file() or not executable.exists():
                continue
            try:
                info = json.loads(marker.read_text())
            except (OSError, ValueError):
                continue  # an interrupted install: `corral runtimes install` redoes it
            if not isinstance(info, dict):
                continue
            yield (
                runtime,
                Interpreter(
                    runtime=runtime,
                    python_version=str(info.get("python", info.get("node", ""))),
                    executable=executable,
                    prefix=Path(str(info.get("base_prefix", venv))),
                    client_version=str(info.get("awslambdaric", info.get("aws-lambda-ric", ""))),
                ),
            )


def _probe(executable: Path) -> tuple[str, str] | None:
    """``(major.minor, full version)`` of an interpreter, or None if it does not run."""
    try:
        out = subprocess.run(
            [str(executable), "-c", "import sys; print(sys.version.split()[0])"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    major_minor = ".".join(out.split(".")[:2])
    return major_minor, out


def find_host_interpreters(search_path: str) -> dict[str, Path]:
    """A working host interpreter for each supported runtime found on ``search_path``."""
    found: dict[str, Path] = {}
    for runtime in PYTHON_RUNTIMES:
        wanted = runtime.removeprefix("python")
        for directory in search_path.split(os.pathsep):
            candidate = Path(directory) / runtime
            if not candidate.exists():
                continue
            probed = _probe(candidate)
            if probed is not None and probed[0] == wanted:
                found[runtime] = candidate
                break
    return found


def run_step(argv: list[str], env: dict[str, str] | None = None) -> None:
    """Run a setup step quietly; on failure its output is in the exception."""
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, argv, done.stdout, done.stderr)


def install_runtime(
    runtimes_dir: Path,
    runtime: str,
    host_python: Path,
    *,
    say: Callable[[str], None],
    extra_pip_args: Iterable[str] = (),
) -> Interpreter:
    """Create (or refresh) the virtualenv of ``runtime`` from ``host_python``.

    Raises:
        subprocess.CalledProcessError: venv creation or pip failed.
    """
    venv = runtimes_dir / runtime
    runtimes_dir.mkdir(parents=True, exist_ok=True)
    say(f"{runtime}: creating a virtualenv from {host_python}")
    run_step([str(host_python), "-m", "venv", "--clear", str(venv)])
    executable = venv / "bin" / "python"
    say(f"{runtime}: installing awslambdaric {AWSLAMBDARIC_VERSION} and boto3 {BOTO3_VERSION}")
    run_step(
        [
            str(executable),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"awslambdaric=={AWSLAMBDARIC_VERSION}",
            f"boto3=={BOTO3_VERSION}",
            *extra_pip_args,
        ]
    )
    probe = subprocess.run(
        [
            str(executable),
            "-c",
            "import sys, awslambdaric; print(sys.version.split()[0]);print(sys.base_prefix)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    info = {
        "runtime": runtime,
        "python": probe[0],
        "base_prefix": probe[1],
        "awslambdaric": AWSLAMBDARIC_VERSION,
        "installed_by": sys.executable,
    }
    (venv / MARKER).write_text(json.dumps(info, indent=2))
    say(f"{runtime}: ready (Python {probe[0]})")
    return Interpreter(runtime, probe[0], executable, Path(probe[1]), AWSLAMBDARIC_VERSION)
