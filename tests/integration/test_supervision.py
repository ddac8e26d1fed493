"""Failures in the background are seen and contained (issue #13, "supervised tasks"): a real
execution environment (awslambdaric in the ``process`` sandbox) whose cleanup fails still
ends and is forgotten; a usage reading that fails is said once; a server whose sandbox sweep
fails still flushes its logs and releases its data directory.

Faults are injected into real parts (a sandbox slot whose ``close`` raises after doing its
work, a process whose memory cannot be read); nothing else is replaced.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.agent.agent import Agent
from corral.agent.environment import EnvironmentConfig, EnvironmentSettings
from corral.agent.registry import EnvironmentRegistry
from corral.api.services import Services
from corral.core import models
from corral.core.settings import Settings
from corral.sandbox.base import SandboxProcess, SandboxSlot, SandboxSpec
from corral.sandbox.interpreters import RuntimeRegistry
from corral.sandbox.process import ProcessSandbox
from corral.store.lock import DataDirLock
from corral.telemetry.logdb import LogQuery
from corral.telemetry.logs import LogRecord
from corral.telemetry.logstore import LogStore
from tests.factories import function_spec

HANDLER = "def handler(event, context):\n    return event\n"


class BrokenCleanup(ProcessSandbox):
    """The process sandbox, whose slots fail to close after closing."""

    def prepare(self, spec: SandboxSpec) -> SandboxSlot:
        slot = super().prepare(spec)
        close = slot.close

        def failing_close() -> None:
            close()
            raise OSError("the scratch disk went away")

        slot.close = failing_close  # type: ignore[method-assign]  # the injected fault
        return slot


class UnreadableUsage(ProcessSandbox):
    """The process sandbox, whose processes' memory cannot be read."""

    def prepare(self, spec: SandboxSpec) -> SandboxSlot:
        slot = super().prepare(spec)
        start = slot.start

        async def started(command: Any) -> SandboxProcess:
            process = await start(command)

            def unreadable() -> int:
                raise PermissionError("memory.usage_in_bytes: permission denied")

            process.memory_bytes = unreadable  # type: ignore[method-assign]  # the fault
            return process

        slot.start = started  # type: ignore[method-assign]
        return slot


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A short directory for sockets (a Unix socket path is at most 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="corral-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def config(tmp_path: Path) -> EnvironmentConfig:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(HANDLER)
    available = RuntimeRegistry(Settings.from_env().runtimes_dir).available()
    spec = function_spec(runtime="python3.11")
    return EnvironmentConfig(
        ref=models.VersionRef("f", models.LATEST),
        spec=spec,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        code_dir=code,
        interpreter=available["python3.11"],
        region="us-east-1",
        log_group="/aws/lambda/f",
        init_timeout_s=30.0,
        instance_id="on-demand",
        revision_id="r1",
    )


@pytest.mark.asyncio
async def test_an_environment_whose_cleanup_fails_still_ends_and_is_forgotten(
    tmp_path: Path, run_dir: Path, sink: LogStore, caplog: pytest.LogCaptureFixture
) -> None:
    registry = EnvironmentRegistry()
    agent = Agent(
        "on-demand",
        sandbox=BrokenCleanup(),
        registry=registry,
        sink=sink,
        run_dir=run_dir,
        env_settings=EnvironmentSettings(stop_grace_s=0.5),
    )
    ended: list[str] = []
    registry.subscribe(ready=lambda e: None, ended=lambda e: ended.append(e.id))
    environment = await agent.launch(config(tmp_path))
    await environment.wait_ready()
    assert registry.ready_for(environment.ref) == [environment]
    with caplog.at_level(logging.ERROR, logger="corral.environment"):
        await environment.stop("test")
    assert environment.state is models.EnvironmentState.STOPPED
    assert ended == [environment.id]  # the registry (and the scaler) learnt it ended
    assert registry.get(environment.id) is None and registry.ready_for(environment.ref) == []
    assert "removing its sandbox failed" in caplog.text
    assert "the scratch disk went away" in caplog.text
    await agent.stop(1.0)


@pytest.mark.asyncio
async def test_a_usage_reading_that_fails_is_said_once(
    tmp_path: Path, run_dir: Path, sink: LogStore, caplog: pytest.LogCaptureFixture
) -> None:
    agent = Agent(
        "on-demand",
        sandbox=UnreadableUsage(),
        registry=EnvironmentRegistry(),
        sink=sink,
        run_dir=run_dir,
        env_settings=EnvironmentSettings(stop_grace_s=0.5),
    )
    with caplog.at_level(logging.WARNING, logger="corral.agent"):
        agent.start()
        environment = await agent.launch(config(tmp_path))
        await environment.wait_ready()
        await asyncio.sleep(2.5)  # two or three samples
        await agent.stop(1.0)
    said = [r for r in caplog.records if "cannot read the CPU and memory" in r.getMessage()]
    assert len(said) == 1
    assert "permission denied" in (said[0].exc_text or "")


@pytest.mark.asyncio
async def test_a_failing_sandbox_sweep_still_flushes_logs_and_releases_the_data_directory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = dataclasses.replace(
        Settings.from_env(),
        data_dir=tmp_path / "data",
        sandbox="process",
        run_root=str(tmp_path),
    )
    services = Services.build(settings)
    await services.start()
    services.logs.emit(LogRecord(time.time(), "/aws/lambda/g", "stream", "r", "kept"))

    def broken_sweep() -> None:
        raise OSError("runc state is unreadable")

    services.sandbox.close = broken_sweep  # type: ignore[method-assign]  # the fault
    with caplog.at_level(logging.ERROR, logger="corral.services"):
        await services.stop()
    assert "error while stopping the sandbox" in caplog.text
    store = LogStore(settings.log_database_path)
    await store.start()
    try:
        assert [e.message for e in await store.query(LogQuery("/aws/lambda/g"))] == ["kept"]
    finally:
        await store.close()
    lock = DataDirLock(settings.data_dir.resolve())
    lock.acquire()  # released: another server may start
    lock.release()
