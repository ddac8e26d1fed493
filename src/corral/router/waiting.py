"""Invocations waiting for a slot, first come first served (``corral:queue-timeout-ms``).

One line per version. A waiter is woken when a slot of the version frees or a new
environment of it becomes ready; it then takes the slot, or, beaten to it, waits again at
the head of the line. Time spent waiting counts against the caller's own deadline.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["WaitLine"]


class WaitLine:
    """The invocations of one version waiting for a slot."""

    def __init__(self) -> None:
        self._waiters: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        return len(self._waiters)

    async def wait(self, timeout_s: float, *, again: bool = False) -> bool:
        """Wait to be woken; False if ``timeout_s`` passed first.

        ``again``: a waiter that was woken but found no slot keeps its place at the head.
        """
        if timeout_s <= 0:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if again:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout_s)
            return True
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                self.wake_one()  # woken as the time ran out: the slot goes to the next
            return False
        finally:
            if not waiter.done():
                waiter.cancel()
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass

    def wake_one(self) -> None:
        """A slot is free: the first waiter may take it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def wake_all(self) -> None:
        """Every waiter looks again (what they wait for failed)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
