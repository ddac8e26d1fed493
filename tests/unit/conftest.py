"""Guards for unit tests: no sockets, no subprocesses, no real sleeps.

Each guard raises instead of doing the I/O, so a unit test that reaches for the network, a
child process or the wall clock fails loudly rather than becoming slow or flaky.
"""

from __future__ import annotations

import socket
import subprocess
import time
from typing import NoReturn

import pytest


def _forbidden(what: str) -> object:
    def refuse(*_args: object, **_kwargs: object) -> NoReturn:
        raise AssertionError(f"unit tests may not {what}")

    return refuse


@pytest.fixture(autouse=True)
def _no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _forbidden("open network connections"))
    monkeypatch.setattr(socket.socket, "bind", _forbidden("bind sockets"))
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _forbidden("start subprocesses"))
    monkeypatch.setattr(time, "sleep", _forbidden("sleep"))
