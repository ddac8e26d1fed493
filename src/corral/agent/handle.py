"""What the router, the scaler, the registry and the API see of an execution environment,
wherever it runs.

``agent.environment.ExecutionEnvironment`` is an environment of this host;
``backends.remote.RemoteEnvironment`` stands for one on another instance, reached over the
agent link, where the very same ``ExecutionEnvironment`` runs. Nothing above ``backends``
touches an environment through anything else, so nothing there cares where it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from corral.core import models
from corral.runtime.invocation import Invocation

if TYPE_CHECKING:  # the environment module imports this one
    from corral.agent.environment import EnvironmentConfig, InitFailure

__all__ = ["EnvironmentHandle", "EnvironmentListener"]


class EnvironmentHandle(Protocol):
    """One execution environment, local or remote."""

    id: str
    config: EnvironmentConfig
    state: models.EnvironmentState
    failure: InitFailure | None
    end_reason: str
    created_s: float
    init_duration_ms: float | None
    invocations: int
    last_used_mono: float
    peak_memory_bytes: int
    memory_bytes: int
    cpu_utilization: float
    reserved: bool

    @property
    def ref(self) -> models.VersionRef: ...

    @property
    def outstanding(self) -> int: ...

    @property
    def concurrency(self) -> int: ...

    @property
    def has_free_slot(self) -> bool: ...

    @property
    def overload(self) -> str | None: ...

    @property
    def memory_utilization(self) -> float: ...

    @property
    def log_stream(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    def take_peak_outstanding(self) -> int: ...

    def dispatch(self, invocation: Invocation) -> None: ...

    async def wait_ready(self) -> None: ...

    def request_drain(self, timeout_s: float, reason: str) -> None: ...

    async def drain(self, timeout_s: float) -> None: ...

    async def stop(self, reason: str) -> None: ...


class EnvironmentListener(Protocol):
    """Told when an environment becomes ready or ends."""

    def environment_ready(self, environment: EnvironmentHandle) -> None: ...

    def environment_ended(self, environment: EnvironmentHandle) -> None: ...
