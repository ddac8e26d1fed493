"""Install one runtime by name, whatever its language: what ``corral runtimes install`` and
a cluster node's agent (on first use) both do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from corral.sandbox.interpreters import (
    NODE_RUNTIMES,
    Interpreter,
    find_host_interpreters,
    install_runtime,
)
from corral.sandbox.nodejs import install_node_runtime, missing_build_tools

__all__ = ["RuntimeUnavailable", "prepare_runtime"]


class RuntimeUnavailable(Exception):
    """This host cannot have the runtime (the message says what is missing)."""


def prepare_runtime(
    runtimes_dir: Path, runtime: str, python_path: str, *, say: Callable[[str], None]
) -> Interpreter:
    """Install ``runtime`` under ``runtimes_dir``.

    Raises:
        RuntimeUnavailable: no interpreter for it here, or the tools to build it are missing.
        subprocess.CalledProcessError: the installation itself failed (its output attached).
    """
    if runtime in NODE_RUNTIMES:
        tools = missing_build_tools()
        if tools:
            raise RuntimeUnavailable(
                f"{runtime} needs {', '.join(tools)} on this host (apt install {' '.join(tools)})"
            )
        return install_node_runtime(runtimes_dir, runtime, say=say)
    hosts = find_host_interpreters(python_path)
    if runtime not in hosts:
        raise RuntimeUnavailable("no host interpreter found")
    return install_runtime(runtimes_dir, runtime, hosts[runtime], say=say)
