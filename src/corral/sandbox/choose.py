"""Which sandbox this server uses (``CORRAL_SANDBOX``), decided once at start-up.

``auto`` runs a test container: if it works, every environment is a container; if not,
Corral falls back to the ``process`` sandbox and says why, loudly, at start-up and in
``corral status``. Asking for ``container`` where it cannot run is an error that names
the reason and the fix.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from corral.core import errors
from corral.core.settings import Settings
from corral.sandbox.base import Sandbox
from corral.sandbox.container import ContainerOptions, ContainerSandbox
from corral.sandbox.process import ProcessSandbox

__all__ = ["SandboxChoice", "open_sandbox"]

_SANDBOXES = ("auto", "container", "process")
_NETWORKS = ("auto", "slirp4netns", "none")


@dataclass(frozen=True)
class SandboxChoice:
    """The sandbox, and what the operator must be told about it."""

    sandbox: Sandbox
    warnings: tuple[str, ...] = ()


def _egress(settings: Settings) -> str | None:
    choice = settings.container_network
    if choice not in _NETWORKS:
        raise errors.InvalidRequest(
            f"CORRAL_CONTAINER_NETWORK={choice!r} is not one of {', '.join(_NETWORKS)}"
        )
    if choice == "none":
        return None
    found = shutil.which("slirp4netns")
    if found is None and choice == "slirp4netns":
        raise errors.InvalidRequest(
            "CORRAL_CONTAINER_NETWORK=slirp4netns but slirp4netns is not installed "
            "(Debian: apt install slirp4netns)"
        )
    return found


def open_sandbox(settings: Settings) -> SandboxChoice:
    """Set up the sandbox ``settings`` ask for.

    Raises:
        errors.InvalidRequest: the setting is unknown, or ``container`` cannot run here.
    """
    wanted = settings.sandbox
    if wanted not in _SANDBOXES:
        raise errors.InvalidRequest(
            f"CORRAL_SANDBOX={wanted!r} is not one of {', '.join(_SANDBOXES)}"
        )
    no_isolation = (
        "functions run as plain processes on this host, with no isolation from each other "
        "or from Corral's data; use it for development only"
    )
    if wanted == "process":
        return SandboxChoice(ProcessSandbox(), (f"sandbox 'process': {no_isolation}",))
    egress = _egress(settings)
    try:
        if os.geteuid() != 0:
            raise errors.SandboxError("containers need root (cgroups and network namespaces)")
        sandbox = ContainerSandbox(
            ContainerOptions(
                run_dir=settings.run_dir,
                runc=settings.runc,
                egress=egress,
                pids_limit=settings.container_pids_limit,
                cgroup_name=settings.run_dir.name,
            )
        )
        sandbox.setup()
    except errors.SandboxError as exc:
        if wanted == "container":
            raise errors.InvalidRequest(
                f"sandbox 'container' cannot run here: {exc.message}. Fix that, or start "
                "with CORRAL_SANDBOX=process (no isolation)."
            ) from exc
        return SandboxChoice(
            ProcessSandbox(),
            (f"sandbox 'process' (containers cannot run here: {exc.message}): {no_isolation}",),
        )
    warnings: tuple[str, ...] = ()
    if egress is None:
        warnings = (
            "containers have no outbound network (CORRAL_CONTAINER_NETWORK=none or "
            "slirp4netns is not installed: apt install slirp4netns)",
        )
    return SandboxChoice(sandbox, warnings)
