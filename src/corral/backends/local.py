"""The local backend: instances are slices of this host.

An instance has its type's vCPU and memory budget, which placement respects; it is
``Pending`` for ``instance_launch_delay_s`` (seconds by default; minutes mimic EC2), then
``Running``; ``terminate_instance`` drains it (``Draining``) and ends it (``Terminated``).
The slices may add up to more than the host has: the host is then overcommitted, which
``corral status`` shows. Classic functions run in an on-demand pool outside every provider.

Lifecycle events go to the capacity provider's system log (``backends.systemlog``).

Health: every few seconds each running instance is checked (``health_probe``: by default,
that its scratch directory is writable and the host has disk and memory left). An instance
that fails logs ``HealthCheckFailed`` and is terminated; the scaler replaces what it held.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from corral.agent.agent import Agent
from corral.agent.environment import EnvironmentConfig, EnvironmentSettings, ExecutionEnvironment
from corral.agent.registry import EnvironmentRegistry
from corral.backends.base import ON_DEMAND, InstanceInfo
from corral.backends.systemlog import SystemLog
from corral.core import errors, models
from corral.core.tasks import TaskGroup
from corral.sandbox.base import Sandbox
from corral.telemetry import logs

__all__ = ["LocalBackend"]

_log = logging.getLogger("corral.backend")
_HEALTH_INTERVAL_S = 5.0
_MIN_FREE_BYTES = 64 * 1024 * 1024

HealthProbe = Callable[[Path], str | None]


def host_health(run_dir: Path) -> str | None:
    """Why an instance of this host cannot run environments now, or None if it can."""
    try:
        probe = run_dir / ".health"
        probe.write_bytes(b"ok")
        probe.unlink()
        free = shutil.disk_usage(run_dir).free
    except OSError as exc:
        return f"cannot write to {run_dir}: {exc.strerror}"
    if free < _MIN_FREE_BYTES:
        return f"only {free // (1024 * 1024)} MiB of disk left under {run_dir}"
    available = psutil.virtual_memory().available
    if available < _MIN_FREE_BYTES:
        return f"only {available // (1024 * 1024)} MiB of memory left on the host"
    return None


_ZONES = ("a", "b", "c")
_KEEP_TERMINATED_S = 60.0


@dataclass
class _Instance:
    id: str
    provider: models.CapacityProvider
    kind: models.InstanceType
    zone: str
    seq: int
    agent: Agent
    state: models.InstanceState = models.InstanceState.PENDING
    ended_mono: float = 0.0
    empty_since_mono: float | None = field(default_factory=time.monotonic)


class LocalBackend:
    """Instances carved out of this host, one agent each, plus the on-demand pool."""

    def __init__(
        self,
        *,
        sandbox: Sandbox,
        registry: EnvironmentRegistry,
        sink: logs.LogSink,
        run_dir: Path,
        env_settings: EnvironmentSettings,
        launch_delay_s: float = 0.0,
        region: str = "us-east-1",
        health_probe: HealthProbe = host_health,
        health_interval_s: float = _HEALTH_INTERVAL_S,
    ) -> None:
        self._sandbox = sandbox
        self._registry = registry
        self._sink = sink
        self._run_dir = run_dir
        self._env_settings = env_settings
        self._launch_delay_s = launch_delay_s
        self._region = region
        self._health_probe = health_probe
        self._health_interval_s = health_interval_s
        self._instances: dict[str, _Instance] = {}
        self._seq = 0
        self._system_log = SystemLog(sink)
        self._started = False
        self._tasks = TaskGroup("backend")
        self._on_demand = self._new_agent(ON_DEMAND)

    # lifecycle -----------------------------------------------------------------------------
    @property
    def warnings(self) -> list[str]:
        return []

    def describe(self) -> dict[str, object]:
        return {"name": "local"}

    async def start(self) -> None:
        self._started = True
        self._on_demand.start()
        for instance in self._instances.values():
            instance.agent.start()
        self._tasks.spawn(self._check_health_forever(), name="health")

    async def _check_health_forever(self) -> None:
        while True:
            await asyncio.sleep(self._health_interval_s)
            running = [
                i for i in self._instances.values() if i.state is models.InstanceState.RUNNING
            ]
            # Every local instance is this host: one probe answers for all of them.
            problem = self._health_probe(self._run_dir) if running else None
            if problem is None:
                continue
            for instance in running:
                self._event(instance, "HealthCheckFailed", "WARN", problem)
                self.terminate_instance(instance.id, "health check failed")

    async def stop(self, drain_timeout_s: float) -> None:
        await self._tasks.cancel_all()
        agents = [self._on_demand] + [i.agent for i in self._instances.values()]
        await asyncio.gather(*(a.stop(drain_timeout_s) for a in agents))

    # instances ----------------------------------------------------------------------------
    def instances(self, capacity_provider: str | None = None) -> list[InstanceInfo]:
        now = time.monotonic()
        for key in [
            k
            for k, i in self._instances.items()
            if i.state is models.InstanceState.TERMINATED
            and now - i.ended_mono > _KEEP_TERMINATED_S
        ]:
            del self._instances[key]
        return [
            self._info(i)
            for i in sorted(self._instances.values(), key=lambda i: i.seq)
            if capacity_provider is None or i.provider.name == capacity_provider
        ]

    def launch_instance(
        self, provider: models.CapacityProvider, kind: models.InstanceType
    ) -> InstanceInfo:
        self._seq += 1
        instance_id = "i-" + uuid.uuid4().hex[:17]
        zone = f"{self._region}{_ZONES[self._seq % len(_ZONES)]}"
        instance = _Instance(
            instance_id, provider, kind, zone, self._seq, self._new_agent(instance_id)
        )
        self._instances[instance_id] = instance
        self._event(instance, "Launching", "INFO", f"Launching {kind.name} instance in {zone}")
        self._tasks.spawn(self._boot(instance), name=f"boot:{instance_id}")
        return self._info(instance)

    async def _boot(self, instance: _Instance) -> None:
        await asyncio.sleep(self._launch_delay_s)
        if instance.state is not models.InstanceState.PENDING:
            return
        if self._started:
            instance.agent.start()
        instance.state = models.InstanceState.RUNNING
        instance.empty_since_mono = time.monotonic()
        self._event(
            instance,
            "Launched",
            "INFO",
            f"Successfully launched {instance.kind.name} instance {instance.id} in {instance.zone}",
        )

    def report_launch_failure(self, provider: models.CapacityProvider, message: str) -> None:
        self._system_log.launch_failed(provider, message)

    def terminate_instance(self, instance_id: str, reason: str) -> None:
        instance = self._instances.get(instance_id)
        if instance is None or instance.state in (
            models.InstanceState.DRAINING,
            models.InstanceState.TERMINATED,
        ):
            return
        instance.state = models.InstanceState.DRAINING
        self._event(
            instance, "Terminating", "INFO", f"Terminating instance {instance.id}: {reason}"
        )
        self._tasks.spawn(self._terminate(instance), name=f"terminate:{instance_id}")

    async def _terminate(self, instance: _Instance) -> None:
        try:
            await instance.agent.stop(self._env_settings.stop_grace_s + 30.0)
        except Exception as exc:
            self._event(instance, "TerminateFailed", "WARN", f"Could not terminate: {exc}")
            return
        instance.state = models.InstanceState.TERMINATED
        instance.ended_mono = time.monotonic()
        self._event(instance, "Terminated", "INFO", f"Terminated instance {instance.id}")

    # environments ----------------------------------------------------------------------------
    async def launch_environment(
        self, instance_id: str, config: EnvironmentConfig
    ) -> ExecutionEnvironment:
        if instance_id == ON_DEMAND:
            return await self._on_demand.launch(config)
        instance = self._instances.get(instance_id)
        if instance is None or instance.state is not models.InstanceState.RUNNING:
            raise errors.BackendError(f"instance {instance_id} is not running")
        instance.empty_since_mono = None
        return await instance.agent.launch(config)

    # internals --------------------------------------------------------------------------------
    def _new_agent(self, instance_id: str) -> Agent:
        return Agent(
            instance_id,
            sandbox=self._sandbox,
            registry=self._registry,
            sink=self._sink,
            run_dir=self._run_dir,
            env_settings=self._env_settings,
        )

    def _info(self, instance: _Instance) -> InstanceInfo:
        envs = instance.agent.environments
        kind = instance.kind
        if envs:
            instance.empty_since_mono = None
        elif instance.empty_since_mono is None:
            instance.empty_since_mono = time.monotonic()
        cpu = sum(e.cpu_utilization * e.config.vcpus for e in envs) / kind.vcpus
        memory = sum(e.memory_bytes for e in envs) / (kind.memory_mib * 1024 * 1024)
        return InstanceInfo(
            id=instance.id,
            capacity_provider=instance.provider.name,
            instance_type=kind,
            state=instance.state,
            availability_zone=instance.zone,
            launched_seq=instance.seq,
            vcpus_allocated=sum(e.config.vcpus for e in envs),
            memory_allocated_mib=sum(e.config.spec.memory_size_mb for e in envs),
            environments=len(envs),
            cpu_utilization=cpu,
            memory_utilization=memory,
            empty_since_s=instance.empty_since_mono,
        )

    def _event(self, instance: _Instance, event: str, level: str, message: str) -> None:
        self._system_log.event(
            instance.provider,
            event,
            level,
            message,
            instance_id=instance.id,
            zones=(instance.zone,),
            types=(instance.kind.name,),
        )
