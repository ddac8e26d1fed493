"""Fixtures of the integration tests: a real log store (writer process and SQLite file)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from corral.telemetry.logstore import LogStore


@pytest_asyncio.fixture
async def sink(tmp_path: Path) -> AsyncIterator[LogStore]:
    """A started log store in ``tmp_path``, closed afterwards."""
    store = LogStore(tmp_path / "logs.db")
    await store.start()
    yield store
    await store.close()
