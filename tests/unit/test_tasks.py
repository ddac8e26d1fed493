"""``corral.core.tasks``: background tasks never vanish silently."""

from __future__ import annotations

import asyncio
import logging

import pytest

from corral.core.tasks import TaskGroup


@pytest.mark.asyncio
async def test_a_task_that_fails_is_logged_with_its_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    group = TaskGroup("owner")

    async def broken() -> None:
        raise RuntimeError("it broke")

    with caplog.at_level(logging.ERROR, logger="corral.tasks"):
        task = group.spawn(broken(), name="part")
        await asyncio.wait([task])
    assert "background task owner:part failed" in caplog.text
    assert "it broke" in caplog.text


@pytest.mark.asyncio
async def test_cancel_others_spares_the_task_that_asks() -> None:
    group = TaskGroup("environment")
    asleep = group.spawn(asyncio.sleep(60), name="sleeper")
    finished: list[bool] = []

    async def ending() -> None:
        group.cancel_others()
        await asyncio.sleep(0)
        finished.append(True)

    await group.spawn(ending(), name="finish")
    await asyncio.wait([asleep])
    assert asleep.cancelled() and finished == [True]


@pytest.mark.asyncio
async def test_cancel_all_waits_for_the_tasks_and_a_cancelled_one_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    group = TaskGroup("service")
    with caplog.at_level(logging.ERROR, logger="corral.tasks"):
        tasks = [group.spawn(asyncio.sleep(60), name=f"t{n}") for n in range(3)]
        await group.cancel_all()
    assert all(t.cancelled() for t in tasks) and len(group) == 0
    assert caplog.text == ""
