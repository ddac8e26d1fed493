"""The fuzz suite reports how many inputs it tried, at the end of the run."""

from __future__ import annotations

from typing import Any

from tests.fuzz import tally


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if tally.SENT:
        terminalreporter.write_line(tally.summary())
