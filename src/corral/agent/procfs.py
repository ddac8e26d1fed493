"""Small reads of ``/proc``: which process owns a TCP connection.

The Runtime API sees a worker as a TCP peer; its log output arrives on a Unix socket whose
peer pid is known. Matching the two tells which request a ``print()`` line belongs to.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

__all__ = ["tcp_socket_owner"]


def _tcp_inode(proc_pid: int, local_port: int, remote_port: int) -> str | None:
    """The inode of the IPv4 socket ``127.0.0.1:local_port -> :remote_port``, seen from
    the network namespace of ``proc_pid``."""
    wanted_local = f":{local_port:04X}"
    wanted_remote = f":{remote_port:04X}"
    try:
        with open(f"/proc/{proc_pid}/net/tcp") as table:
            next(table, None)
            for line in table:
                fields = line.split()
                if fields[1].endswith(wanted_local) and fields[2].endswith(wanted_remote):
                    return fields[9]
    except OSError:
        return None
    return None


def tcp_socket_owner(pids: Iterable[int], local_port: int, remote_port: int) -> int | None:
    """The pid among ``pids`` holding the client socket ``local_port -> remote_port``."""
    candidates = list(pids)
    if not candidates:
        return None
    inode = _tcp_inode(candidates[0], local_port, remote_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in reversed(candidates):
        fd_dir = f"/proc/{pid}/fd"
        with contextlib.suppress(OSError):
            for fd in os.listdir(fd_dir):
                with contextlib.suppress(OSError):
                    if os.readlink(f"{fd_dir}/{fd}") == target:
                        return pid
    return None


def process_alive(pid: int) -> bool:
    """Whether a process exists and has not exited (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return False
    return bool(fields) and fields[0] not in (b"Z", b"X")
