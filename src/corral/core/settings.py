"""Corral's settings: one frozen object, read once at start-up.

Every setting has a ``CORRAL_<NAME>`` environment variable (``CORRAL_PORT``,
``CORRAL_DATA_DIR``, ...); flags of ``corral serve`` override them. Nothing else in Corral
reads ``os.environ``: the settings object is passed down to whoever needs a value.

Callers: ``cli`` builds it (``Settings.from_env`` then ``with_overrides``); every service
receives it in its constructor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from corral.core import errors

__all__ = ["Settings", "default_runtimes_dir", "is_loopback"]

_PREFIX = "CORRAL_"


def default_runtimes_dir(environ: Mapping[str, str]) -> Path:
    """Where ``corral runtimes install`` puts one virtualenv per Python runtime."""
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", "/root")) / ".local/share")
    return Path(base) / "corral" / "runtimes"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1 or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """All of Corral's knobs. Units are in the names."""

    host: str = "127.0.0.1"
    port: int = 9000
    data_dir: Path = Path(".corral")
    runtimes_dir: Path = field(default_factory=lambda: default_runtimes_dir(os.environ))
    # Where client commands send requests; empty: the local server (``cli.common.endpoint``).
    endpoint_url: str = ""
    region: str = "us-east-1"
    account_id: str = "123456789012"
    # API authentication: ``sigv4`` (every call signed by a Corral key) or ``none`` (loopback
    # addresses only). Signatures may be scoped to ``region`` and to these regions
    # (comma-separated; ``*``: any).
    auth: str = "sigv4"
    signing_regions: str = ""
    # ``auto``: ``container`` where runc works, else ``process`` (with a warning).
    sandbox: str = "auto"
    # Where instances come from: ``local`` (slices of this host) or ``ray`` (the nodes of a
    # Ray cluster that advertise the resource ``corral``; ``ray_address`` is its head).
    backend: str = "local"
    ray_address: str = ""
    # The address of this host's Ray node (a Ray driver attaches to a node of its host);
    # empty: the head's, from ``ray_address`` (the server runs beside the head).
    ray_node_ip: str = ""
    runc: str = "runc"
    # Outbound network of containers: ``auto`` (slirp4netns if installed), ``slirp4netns``
    # or ``none`` (loopback only).
    container_network: str = "auto"
    # Processes and threads per execution environment (Lambda's quota is 1,024).
    container_pids_limit: int = 1024
    run_root: str = "/tmp"
    # Where ``corral runtimes install`` looks for python3.X interpreters (os.pathsep-separated).
    python_path: str = ""
    log_level: str = "info"
    # The invocation path.
    classic_idle_timeout_s: float = 300.0
    account_concurrency_limit: int = 1000
    # What PutFunctionConcurrency must leave unreserved (AWS keeps 100).
    min_unreserved_concurrency: int = 100
    max_sync_payload_bytes: int = 6 * 1024 * 1024
    max_async_payload_bytes: int = 1024 * 1024
    # Asynchronous invocations (InvocationType=Event): AWS retries a failed event twice, after
    # about one and two minutes.
    async_max_retries: int = 2
    async_retry_delay_s: float = 60.0
    async_workers: int = 16
    # The address function URLs are given under (``https://lambda.example.com`` behind a
    # proxy); empty: the address Corral listens on.
    public_url: str = ""
    # Attempts to deliver a destination record to a function that does not exist (backing
    # off from 1 s) before the record is kept in ``corral events failed``.
    async_destination_attempts: int = 5
    # When SQLite commits reach the disk: ``full`` (each commit is fsynced: acknowledged
    # functions and queued events survive a power loss) or ``normal`` (they survive a crash of
    # Corral, not of the machine; cheaper commits).
    db_sync: str = "full"
    # Function and system logs: ``sqlite`` (``<data-dir>/logs.db``) or ``off`` (LogType=Tail
    # still works).
    log_store: str = "sqlite"
    log_retention_s: float = 7 * 24 * 3600.0
    log_max_bytes: int = 1024**3
    # Log output read from each execution environment, per second and per vCPU (0: no
    # limit). A function that writes faster waits for its output to be read, so one chatty
    # function cannot slow the others.
    log_rate_bytes_per_s: float = 1024.0 * 1024.0
    # Invocation metrics (``GET /metrics``, ``corral metrics``): ``on`` or ``off``.
    metrics: str = "on"
    # Lifecycle.
    drain_timeout_s: float = 10.0
    environment_stop_grace_s: float = 2.0
    # A Managed Instances worker still busy this long after its invocation timed out gets
    # its environment recycled (the code is not stopped at the timeout, as on AWS).
    stuck_worker_grace_s: float = 60.0
    classic_init_timeout_s: float = 10.0
    # Managed Instances: a runtime may initialise for max(this, the function's timeout).
    managed_init_timeout_s: float = 130.0
    scale_interval_s: float = 1.0
    # Environments starting at once: booting a runtime costs CPU, and a burst of boots on
    # a small host delays every one of them; a few at a time get traffic sooner.
    max_starting_environments: int = field(default_factory=lambda: 2 * (os.cpu_count() or 1))
    scale_in_cooldown_s: float = 60.0
    instance_launch_delay_s: float = 2.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every ``CORRAL_*`` variable that names a setting.

        Raises:
            errors.InvalidRequest: a variable holds a value of the wrong type.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _convert(f.name, f.type, raw)
        if "runtimes_dir" not in values:
            values["runtimes_dir"] = default_runtimes_dir(env)
        if "python_path" not in values:
            values["python_path"] = _python_search_path(env)
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given settings replaced; ``None`` values are ignored."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **changes)

    @property
    def allowed_signing_regions(self) -> frozenset[str]:
        extra = {r.strip() for r in self.signing_regions.split(",") if r.strip()}
        return frozenset({self.region, *extra})

    @property
    def credentials_path(self) -> Path:
        """The admin key, in the AWS shared-credentials format (profile ``corral``)."""
        return self.data_dir / "credentials"

    @property
    def database_path(self) -> Path:
        """The SQLite file holding functions, versions, aliases and providers."""
        return self.data_dir / "corral.db"

    @property
    def log_database_path(self) -> Path:
        """Function and system logs (``telemetry.logstore``)."""
        return self.data_dir / "logs.db"

    @property
    def code_dir(self) -> Path:
        """Content-addressed function code: ``<sha256>.zip`` and its unpacked tree."""
        return self.data_dir / "code"

    @property
    def run_dir(self) -> Path:
        """Per-environment sockets and scratch space; emptied at every start.

        Unix socket paths are limited to 108 bytes, so this is a short path under /tmp
        derived from the data directory (``CORRAL_RUN_ROOT`` moves it).
        """
        digest = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:12]
        return Path(self.run_root) / f"corral-{digest}"


def _python_search_path(env: Mapping[str, str]) -> str:
    """PATH, then pyenv's versions, then the system's usual places."""
    dirs = [d for d in env.get("PATH", "").split(os.pathsep) if d and "shims" not in d]
    pyenv_root = Path(env.get("PYENV_ROOT") or Path(env.get("HOME", "/root")) / ".pyenv")
    versions = pyenv_root / "versions"
    if versions.is_dir():
        dirs += [str(p / "bin") for p in sorted(versions.iterdir(), reverse=True)]
    dirs += ["/usr/local/bin", "/usr/bin"]
    return os.pathsep.join(dict.fromkeys(dirs))


def _convert(name: str, type_name: Any, raw: str) -> Any:
    kind = str(type_name)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError as exc:
        raise errors.InvalidRequest(
            f"{_PREFIX}{name.upper()}={raw!r} is not a valid {kind}"
        ) from exc
    return raw
