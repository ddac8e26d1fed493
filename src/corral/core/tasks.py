"""Named, guarded background tasks.

A background task that dies unexpectedly must not vanish silently: ``spawn`` names every
task and logs any exception other than cancellation when it ends. It keeps a reference so
the task is not garbage-collected while running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["TaskGroup", "spawn"]

_log = logging.getLogger("corral.tasks")
_running: set[asyncio.Task[Any]] = set()


def _report(task: asyncio.Task[Any]) -> None:
    _running.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        _log.error("background task %s failed", task.get_name(), exc_info=exc)


def spawn(coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
    """Start ``coro`` as a named task whose unexpected failure is logged."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _running.add(task)
    task.add_done_callback(_report)
    return task


class TaskGroup:
    """The background tasks of one service, cancelled together on ``stop``."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Start a named, guarded task owned by this group."""
        task = spawn(coro, name=f"{self._owner}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    def cancel_others(self) -> None:
        """Cancel every task of the group but the one calling (which is ending it)."""
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current and not task.done():
                task.cancel()

    async def cancel_all(self, *, timeout_s: float = 5.0) -> None:
        """Cancel every task of the group and wait (bounded) for them to finish."""
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)
