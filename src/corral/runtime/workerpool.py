"""Corral's worker pool for a Python Managed Instances environment (opt-in, docs/beyond-aws.md).

This file is not imported by Corral: it is the program an environment runs, in the
function's own interpreter, instead of ``python -m awslambdaric`` when a function turns on
``corral:fork-after-init`` or ``corral:kill-on-timeout``. It imports nothing of Corral's.

What it changes, and only that (every invocation still runs in ``awslambdaric``'s
``bootstrap.run``: its handler loading, context object, error format and logging):

* **Fork after init** (``_CORRAL_FORK_AFTER_INIT=1``): the main process runs
  ``bootstrap.run`` itself, so the function's init (its imports and module-level code) runs
  once, there; where ``bootstrap.run`` first asks for an invocation, the process forks its
  workers, which return from that call and serve invocations with the init already done,
  sharing its memory copy-on-write (``gc.freeze()`` first, so the collector does not write to
  every shared object). When the init fails, ``bootstrap.run`` reports it and exits as it
  always does, before any fork. Without it, each worker is forked from a bare process and
  runs the init itself, as ``awslambdaric``'s own pool does.
* **Workers are replaced**: a worker killed by a signal (Corral kills one that runs past its
  invocation's deadline) is forked again, from the process that ran the init when fork after
  init is on. A worker that exits by itself is not replaced, as in ``awslambdaric``'s pool:
  the environment then sees a worker gone. The pool ends when no worker is left.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

_FORK_AFTER_INIT = "_CORRAL_FORK_AFTER_INIT"


class _Pool:
    """Forks the workers and keeps them at their number."""

    def __init__(self, size: int, start_worker: Any) -> None:
        self._size = size
        # In a child: what the worker does (returns only when ``start_worker`` returns).
        self._start_worker = start_worker
        self._workers: set[int] = set()

    def run(self) -> None:
        """Fork ``size`` workers and replace the killed ones; return in each child."""
        for _ in range(self._size):
            if self._fork():
                return
        while self._workers:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid not in self._workers:
                continue
            self._workers.discard(pid)
            if os.WIFSIGNALED(status) and self._fork():
                return
        sys.exit(0)

    def _fork(self) -> bool:
        """Fork one worker; True in the child."""
        pid = os.fork()
        if pid == 0:
            self._start_worker()
            return True
        self._workers.add(pid)
        return False


def _worker_output(socket_path: str | None) -> None:
    """Send a worker's stdout and stderr to the environment's log socket, as awslambdaric's
    workers do (each worker its own connection, so lines are told apart by process)."""
    from awslambdaric.lambda_multi_concurrent_utils import MultiConcurrentRunner

    if socket_path:
        MultiConcurrentRunner._redirect_output(socket_path)


class _ForkingClient:
    """The runtime client ``bootstrap.run`` gets in the process that runs the init: its first
    wait for an invocation forks the workers, and each worker goes on from there."""

    def __init__(self, client: Any, pool: _Pool) -> None:
        self._client = client
        self._pool = pool
        self._forked = False

    def wait_next_invocation(self) -> Any:
        if not self._forked:
            self._forked = True
            gc.freeze()
            self._pool.run()  # returns in the workers only
        return self._client.wait_next_invocation()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def main(argv: list[str]) -> None:
    from awslambdaric import bootstrap
    from awslambdaric.lambda_config import LambdaConfigProvider
    from awslambdaric.lambda_multi_concurrent_utils import MultiConcurrentRunner
    from awslambdaric.lambda_runtime_client import LambdaMultiConcurrentRuntimeClient

    config = LambdaConfigProvider(argv)
    size = int(config.max_concurrency or 1)
    socket_path = config.lmi_socket_path
    fork_after_init = os.environ.pop(_FORK_AFTER_INIT, "") == "1"
    MultiConcurrentRunner._emit_worker_pool_event(size)
    if fork_after_init:
        client = LambdaMultiConcurrentRuntimeClient(config.api_address, config.use_thread_polling)
        pool = _Pool(size, lambda: _worker_output(socket_path))
        bootstrap.run(config.handler, _ForkingClient(client, pool))
        return

    def serve() -> None:
        MultiConcurrentRunner.run_single(
            config.handler, config.api_address, config.use_thread_polling, socket_path
        )

    _Pool(size, serve).run()


if __name__ == "__main__":
    main(sys.argv)
