"""The line of invocations waiting for a slot: first come, first served (pure asyncio)."""

from __future__ import annotations

import asyncio

import pytest

from corral.router.waiting import WaitLine


@pytest.mark.asyncio
async def test_waiters_are_woken_in_the_order_they_came() -> None:
    line = WaitLine()
    order: list[int] = []

    async def waiter(n: int) -> None:
        assert await line.wait(5)
        order.append(n)

    tasks = [asyncio.create_task(waiter(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert len(line) == 3
    for _ in range(3):
        line.wake_one()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2] and len(line) == 0


@pytest.mark.asyncio
async def test_a_waiter_beaten_to_its_slot_keeps_the_head_of_the_line() -> None:
    line = WaitLine()
    later = asyncio.create_task(line.wait(5))
    await asyncio.sleep(0)
    again = asyncio.create_task(line.wait(5, again=True))
    await asyncio.sleep(0)
    line.wake_one()
    assert await again and not later.done()
    line.wake_one()
    assert await later


@pytest.mark.asyncio
async def test_a_wait_that_runs_out_says_so_and_leaves_the_line() -> None:
    line = WaitLine()
    assert not await line.wait(0.01)
    assert not await line.wait(0)
    assert len(line) == 0
    line.wake_one()  # nobody waits: nothing happens


@pytest.mark.asyncio
async def test_a_wake_meant_for_a_waiter_that_gave_up_goes_to_the_next() -> None:
    line = WaitLine()
    first = asyncio.create_task(line.wait(5))
    second = asyncio.create_task(line.wait(5))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    line.wake_one()
    assert await second
