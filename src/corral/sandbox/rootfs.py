"""The root filesystem every container starts from: empty directories and a small /etc.

Nothing of the host is copied but a few files of ``/etc`` that programs need (the dynamic
linker's cache, TLS certificates, time zone, name service switch). The host's system
directories, the Python installation and the runtime are bind-mounted read-only over the
empty directories by runc (``sandbox.oci``), so one skeleton serves every container and the
runtime user cannot write anywhere but ``/tmp``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

__all__ = ["SYSTEM_DIRS", "RUNTIME_GID", "RUNTIME_UID", "RUNTIME_USER", "build_rootfs"]

# The host directories mounted read-only into every container.
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
# Mount points inside the container (``/var/task``: code; ``/var/runtime``: the runtime).
_MOUNT_POINTS = ("proc", "dev", "tmp", "var/task", "var/runtime", "run/corral")
# What of the host's /etc is copied (symlinks kept as they are).
_ETC = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "alternatives",
    "localtime",
    "timezone",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "protocols",
    "services",
    "mime.types",
    "os-release",
)
# Lambda runs functions as sbx_user1051 (uid 993) on Amazon Linux.
RUNTIME_USER = "sbx_user1051"
RUNTIME_UID = 993
RUNTIME_GID = 990


def build_rootfs(target: Path, *, extra_dirs: tuple[Path, ...], nameserver: str | None) -> Path:
    """Create the skeleton at ``target`` (replacing an old one) and return it.

    ``extra_dirs`` are absolute host paths that will be mounted at the same place (the
    Python installation): their parents are created world-readable so the runtime user
    can reach them even when the host's are private (``/root``).
    """
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, mode=0o755)
    os.chmod(target, 0o755)
    for system_dir in SYSTEM_DIRS:
        if Path(system_dir).is_dir() and not Path(system_dir).is_symlink():
            _mkdirs(target, Path(system_dir))
        elif Path(system_dir).is_symlink():
            (target / system_dir.lstrip("/")).symlink_to(os.readlink(system_dir))
    for mount_point in _MOUNT_POINTS:
        _mkdirs(target, Path("/" + mount_point))
    # runc gives a tmpfs the mode of the directory it covers.
    os.chmod(target / "tmp", 0o1777)
    for extra in extra_dirs:
        _mkdirs(target, extra)
    etc = target / "etc"
    etc.mkdir(mode=0o755)
    for name in _ETC:
        _copy(Path("/etc") / name, etc / name)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/sbin/nologin\n"
        f"{RUNTIME_USER}:x:{RUNTIME_UID}:{RUNTIME_GID}::/tmp:/sbin/nologin\n"
    )
    (etc / "group").write_text(f"root:x:0:\n{RUNTIME_USER}:x:{RUNTIME_GID}:\n")
    (etc / "hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost\n")
    (etc / "hostname").write_text("localhost\n")
    (etc / "resolv.conf").write_text(f"nameserver {nameserver}\n" if nameserver else "")
    return target


def _mkdirs(root: Path, absolute: Path) -> None:
    current = root
    for part in absolute.parts[1:]:
        current = current / part
        if not current.exists():
            current.mkdir(mode=0o755)
            os.chmod(current, 0o755)


def _copy(source: Path, target: Path) -> None:
    with contextlib.suppress(OSError):
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        elif source.is_file():
            shutil.copy2(source, target)
