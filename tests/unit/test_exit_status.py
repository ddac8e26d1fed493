"""``ExitStatus.describe``: how a runtime's exit reads in ``Runtime exited with error: ...``."""

from __future__ import annotations

import signal

import pytest

from corral.sandbox.base import ExitStatus


@pytest.mark.parametrize(
    ("code", "text"), [(0, "exit status 0"), (1, "exit status 1"), (137, "exit status 137")]
)
def test_a_normal_exit_reads_as_its_status(code: int, text: str) -> None:
    assert ExitStatus(code).describe() == text


def test_running_out_of_memory_reads_as_killed_as_lambda_writes_it() -> None:
    # Lambda: errorType Runtime.OutOfMemory, message "... Runtime exited with error:
    # signal: killed". The error type tells; the wording is that of any SIGKILL.
    assert ExitStatus(-signal.SIGKILL, out_of_memory=True).describe() == "signal: killed"


def test_a_signal_without_a_name_reads_as_its_number() -> None:
    # Go's wording, which Lambda's messages come from: "signal: signal 99".
    assert ExitStatus(-99).describe() == "signal: signal 99"


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (signal.SIGKILL, "signal: killed"),
        (signal.SIGSEGV, "signal: segmentation fault"),
    ],
    ids=["kill", "segv"],
)
def test_a_signal_reads_as_lambda_reports_it(number: int, text: str) -> None:
    assert ExitStatus(-number).describe() == text
