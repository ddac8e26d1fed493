"""One server per data directory: an exclusive ``flock`` on ``<data dir>/corral.lock``.

Two servers sharing a data directory would overwrite each other's state and scratch space.
The lock goes with the process, so a server that crashed leaves nothing to clean up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from corral.core import errors

__all__ = ["DataDirLock"]


class DataDirLock:
    """Held while a server uses its data directory."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "corral.lock"
        self._fd = -1

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            errors.InvalidRequest: another live server holds it.
        """
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise errors.InvalidRequest(
                f"another Corral (pid {holder}) is using the data directory "
                f"{self._path.parent.resolve()}; stop it first, or start this one with "
                "another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
