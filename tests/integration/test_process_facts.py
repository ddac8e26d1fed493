"""Host facts the environments rely on: the container's pid-1 prelude runs the runtime's
command as Python itself would, a module (``python -m awslambdaric``) or a program
(``python -c``, Corral's worker pool); a process that exited is not alive."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from corral.sandbox.container import _as_pid1


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["-c", "import sys; print(__name__, sys.argv[1:])", "app.handler"], "__main__"),
        (["-m", "platform", "--terse"], "Linux"),
    ],
)
def test_the_pid_1_prelude_runs_a_program_or_a_module_as_python_would(
    command: list[str], expected: str
) -> None:
    argv = _as_pid1([sys.executable, *command])
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout
    assert expected in out
    if command[0] == "-c":
        assert out.strip() == "__main__ ['app.handler']"


def test_a_process_is_alive_until_it_exits_and_not_as_a_zombie() -> None:
    from corral.agent.procfs import process_alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert process_alive(child.pid)
        child.kill()
        # Killed but not yet reaped: a zombie is not alive.

        deadline = time.monotonic() + 10
        while process_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not process_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)
