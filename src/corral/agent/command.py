"""The command that starts an execution environment's runtime.

Python: ``python -m awslambdaric HANDLER``, or Corral's worker pool (``runtime/workerpool.py``)
when an opt-in extra needs Corral to own the workers. Node.js: ``node --require GUARD ENTRY``
with aws-lambda-ric 4.x (which reads the handler from ``_HANDLER``), or the 3.x client with
the handler as its argument for classic ``nodejs22.x`` functions (callback handlers, as on
Lambda). The guard (``runtime/corral-guard.cjs``) is Corral's small layer over the Node.js
client; it is written next to the log socket, a directory both sandboxes show the runtime.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from corral.core import models
from corral.sandbox.base import RuntimeLayout
from corral.sandbox.interpreters import Interpreter
from corral.sandbox.nodejs import CLASSIC_RIC_ENTRY, RIC_ENTRY, uses_classic_client

__all__ = ["runtime_argv", "write_node_guard"]

# Corral's layer over aws-lambda-ric.
_NODE_GUARD = "corral-guard.cjs"


@functools.cache
def _packaged(name: str) -> str:
    return resources.files("corral.runtime").joinpath(name).read_text()


def write_node_guard(ipc_dir: Path) -> None:
    """Put the Node.js guard in the environment's ipc directory (next to its log socket)."""
    (ipc_dir / _NODE_GUARD).write_text(_packaged(_NODE_GUARD))


def runtime_argv(
    interpreter: Interpreter,
    spec: models.FunctionSpec,
    layout: RuntimeLayout,
    *,
    owns_workers: bool,
) -> list[str]:
    """The runtime's argv, as paths appear inside the sandbox (``layout``)."""
    program = str(layout.executable)
    if interpreter.is_node:
        guard = ["--require", str(layout.log_socket.parent / _NODE_GUARD)]
        classic = uses_classic_client(interpreter.runtime, spec.managed is not None)
        if classic and (interpreter.home / CLASSIC_RIC_ENTRY).is_file():
            return [program, *guard, str(layout.runtime_dir / CLASSIC_RIC_ENTRY), spec.handler]
        return [program, *guard, str(layout.runtime_dir / RIC_ENTRY)]
    if owns_workers:
        return [program, "-c", _packaged("workerpool.py"), spec.handler]
    return [program, "-m", "awslambdaric", spec.handler]
