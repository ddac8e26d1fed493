"""Network namespaces for execution environments, made without a subprocess.

Each container gets its own network namespace holding only a loopback interface and, when
egress is on, a ``slirp4netns`` tap (user-mode NAT to the outside, host loopback refused).
The environment's Runtime API listens on ``127.0.0.1:9001`` *inside* that namespace:
nothing outside it, other environments included, can connect to it.

How: a short-lived thread ``unshare(CLONE_NEWNET)``s, brings ``lo`` up, binds and listens
on the Runtime API socket, keeps a file descriptor on the namespace and returns to Corral's
namespace (``setns``). The socket stays in the new namespace and Corral's event loop serves
it like any other. The namespace lives while the descriptor, the socket or a process in it
does; runc joins it through ``/proc/<corral pid>/fd/<fd>``. See ``MACHINE_FACTS.md``.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import socket
import struct
import subprocess
import threading
from pathlib import Path

from corral.core import errors

__all__ = ["Egress", "NetworkNamespace", "RUNTIME_API_PORT", "SLIRP_DNS"]

# Where the Runtime API listens inside every namespace (as on AWS).
RUNTIME_API_PORT = 9001
# slirp4netns's built-in DNS forwarder, as the container's resolv.conf names it.
SLIRP_DNS = "10.0.2.3"

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sH14x"
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _bring_up_loopback() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(_IFREQ, b"lo", 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


def _make_namespace(port: int) -> tuple[int, socket.socket]:
    """In the calling thread: a new namespace, ``lo`` up, a socket bound to ``port``."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.unshare(_CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        try:
            namespace = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _bring_up_loopback()
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind(("127.0.0.1", port))
            except BaseException:
                os.close(namespace)
                raise
        finally:
            # A thread must never stay in the wrong namespace.
            _check(_libc.setns(home, _CLONE_NEWNET), "setns back to Corral's namespace")
    finally:
        os.close(home)
    return namespace, sock


class NetworkNamespace:
    """A fresh network namespace with the Runtime API socket bound inside it."""

    def __init__(self, port: int = RUNTIME_API_PORT) -> None:
        outcome: list[tuple[int, socket.socket] | BaseException] = []

        def run() -> None:
            try:
                outcome.append(_make_namespace(port))
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=run, name="corral-netns")
        thread.start()
        thread.join()
        result = outcome[0]
        if isinstance(result, BaseException):
            raise errors.SandboxError(f"could not create a network namespace: {result}")
        self._fd, self.socket = result
        self.path = Path(f"/proc/{os.getpid()}/fd/{self._fd}")

    @property
    def fd(self) -> int:
        return self._fd

    def close(self) -> None:
        """Drop Corral's hold on the namespace (the socket is closed by its server)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


class Egress:
    """``slirp4netns`` giving one namespace outbound network access.

    The namespace sees a ``tap0`` at 10.0.2.100 with NAT to the host's network; the host's
    own loopback (10.0.2.2) is refused, so Corral's API and other local services bound to
    127.0.0.1 stay out of reach.
    """

    def __init__(self, binary: str, namespace: NetworkNamespace) -> None:
        read_end, write_end = os.pipe()
        # slirp4netns exits when this pipe closes: on ``close`` or when Corral dies.
        exit_read, self._exit_write = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [
                    binary,
                    "--configure",
                    "--mtu=65520",
                    "--disable-host-loopback",
                    f"--ready-fd={write_end}",
                    f"--exit-fd={exit_read}",
                    "--netns-type=path",
                    str(namespace.path),
                    "tap0",
                ],
                pass_fds=(write_end, exit_read, namespace.fd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            for fd in (read_end, write_end, self._exit_write):
                os.close(fd)
            raise errors.SandboxError(f"could not start {binary}: {exc}") from exc
        finally:
            os.close(exit_read)
        os.close(write_end)
        try:
            ready = os.read(read_end, 1)
        finally:
            os.close(read_end)
        if ready != b"1":
            os.close(self._exit_write)
            self._proc.kill()
            _, err = self._proc.communicate()
            raise errors.SandboxError(
                f"{binary} failed: {err.decode(errors='replace').strip() or 'no output'}"
            )

    def close(self) -> None:
        if self._exit_write >= 0:
            os.close(self._exit_write)
            self._exit_write = -1
        try:
            self._proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stderr is not None:
            self._proc.stderr.close()
