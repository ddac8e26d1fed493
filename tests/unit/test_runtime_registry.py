"""``RuntimeRegistry``: which runtimes ``corral runtimes install`` left ready on disk."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from corral.sandbox.interpreters import Interpreter, RuntimeRegistry


def install(runtimes: Path, runtime: str, marker: Any, *, executable: bool = True) -> Path:
    """Lay out a runtime as the installer does: ``bin/python`` and the JSON marker."""
    venv = runtimes / runtime
    (venv / "bin").mkdir(parents=True)
    if executable:
        (venv / "bin" / "python").write_text("")
    if marker is not None:
        text = marker if isinstance(marker, str) else json.dumps(marker)
        (venv / "corral-runtime.json").write_text(text)
    return venv


def test_a_runtime_with_marker_and_interpreter_is_available(tmp_path: Path) -> None:
    install(
        tmp_path,
        "python3.12",
        {"python": "3.12.8", "base_prefix": "/usr", "awslambdaric": "4.2.2"},
    )
    assert RuntimeRegistry(tmp_path).available() == {
        "python3.12": Interpreter(
            runtime="python3.12",
            python_version="3.12.8",
            executable=tmp_path / "python3.12" / "bin" / "python",
            prefix=Path("/usr"),
            client_version="4.2.2",
        )
    }


def test_half_installed_and_unsupported_runtimes_are_not_available(tmp_path: Path) -> None:
    install(tmp_path, "python3.11", None)
    install(tmp_path, "python3.13", {"python": "3.13.1"}, executable=False)
    install(tmp_path, "python3.10", {"python": "3.10.4"})
    assert RuntimeRegistry(tmp_path).available() == {}
    assert RuntimeRegistry(tmp_path / "missing").available() == {}


def test_a_marker_without_details_falls_back_to_the_virtualenv(tmp_path: Path) -> None:
    venv = install(tmp_path, "python3.14", {})
    ready = RuntimeRegistry(tmp_path).available()["python3.14"]
    assert (ready.python_version, ready.prefix, ready.client_version) == ("", venv, "")


def test_the_scan_is_cached_until_refreshed(tmp_path: Path) -> None:
    registry = RuntimeRegistry(tmp_path)
    assert registry.available() == {}
    install(tmp_path, "python3.11", {"python": "3.11.9"})
    assert registry.available() == {}
    registry.refresh()
    assert list(registry.available()) == ["python3.11"]


@pytest.mark.parametrize("marker", ['{"python": "3.1', "[]"], ids=["truncated", "not-an-object"])
def test_a_damaged_marker_leaves_that_runtime_unavailable(tmp_path: Path, marker: str) -> None:
    install(tmp_path, "python3.11", {"python": "3.11.9"})
    install(tmp_path, "python3.12", marker)
    assert list(RuntimeRegistry(tmp_path).available()) == ["python3.11"]


def test_children_are_wrapped_to_die_with_corral_without_python_in_the_fork() -> None:
    from corral.sandbox.spawn import dying_with_parent

    wrapped = dying_with_parent(["runc", "run", "x"], signal.SIGTERM)
    assert wrapped[1:] == ["--pdeathsig", "TERM", "--", "runc", "run", "x"]
    assert wrapped[0].endswith("/setpriv")
