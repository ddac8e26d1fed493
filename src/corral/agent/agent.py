"""The agent of one instance: starts execution environments there and stops them.

Corral runs one agent per instance. With the local backend an instance is a slice of this
host; the agent samples its environments' memory once a second (peak memory for REPORT).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from corral.agent.environment import EnvironmentConfig, EnvironmentSettings, ExecutionEnvironment
from corral.agent.registry import EnvironmentRegistry
from corral.core import errors, models
from corral.core.tasks import TaskGroup
from corral.sandbox.base import Sandbox
from corral.telemetry.logs import LogSink

__all__ = ["Agent"]

_log = logging.getLogger("corral.agent")
_ENDED = (models.EnvironmentState.STOPPED, models.EnvironmentState.FAILED)


class Agent:
    """Execution environments of one instance."""

    def __init__(
        self,
        instance_id: str,
        *,
        sandbox: Sandbox,
        registry: EnvironmentRegistry,
        sink: LogSink,
        run_dir: Path,
        env_settings: EnvironmentSettings,
    ) -> None:
        self.instance_id = instance_id
        self._sandbox = sandbox
        self._registry = registry
        self._sink = sink
        self._run_dir = run_dir
        self._env_settings = env_settings
        self._environments: dict[str, ExecutionEnvironment] = {}
        self._tasks = TaskGroup(f"agent:{instance_id}")

    @property
    def environments(self) -> list[ExecutionEnvironment]:
        """The environments of this instance that have not ended."""
        return [e for e in self._environments.values() if e.state not in _ENDED]

    def start(self) -> None:
        self._tasks.spawn(self._sample_forever(), name="sample")

    async def launch(
        self, config: EnvironmentConfig, environment_id: str | None = None
    ) -> ExecutionEnvironment:
        """Start one execution environment (named ``environment_id``, or a new id); it
        reports readiness through the registry.

        Raises:
            errors.SandboxError: the sandbox could not start it.
        """
        environment = ExecutionEnvironment(
            config,
            sandbox=self._sandbox,
            run_dir=self._run_dir,
            sink=self._sink,
            listener=self._registry,
            env_settings=self._env_settings,
            environment_id=environment_id,
        )
        self._environments[environment.id] = environment
        self._registry.add(environment)
        try:
            await environment.start()
        except errors.CorralError:
            self._environments.pop(environment.id, None)
            self._registry.environment_ended(environment)
            raise
        return environment

    async def stop(self, drain_timeout_s: float) -> None:
        """Drain every environment (bounded), then stop them all."""
        await self._tasks.cancel_all()
        live = list(self._environments.values())
        await asyncio.gather(*(e.drain(drain_timeout_s) for e in live), return_exceptions=True)
        self._environments.clear()

    async def _sample_forever(self) -> None:
        failing: set[str] = set()  # environments whose sampling failed (said once each)
        while True:
            for environment in list(self._environments.values()):
                if environment.state in _ENDED:
                    self._environments.pop(environment.id, None)
                    failing.discard(environment.id)
            live = list(self._environments.values())
            # cgroup and /proc reads for every environment: off the event loop.
            problems = await asyncio.to_thread(_sample, live)
            for environment, problem in zip(live, problems, strict=True):
                if problem is None:
                    failing.discard(environment.id)
                elif environment.id not in failing and environment.state not in _ENDED:
                    # An environment may end between the check and the read; anything
                    # else means its CPU and memory (hence the 95% overload throttle and
                    # "Max Memory Used") are not known: say so, once.
                    failing.add(environment.id)
                    _log.warning(
                        "cannot read the CPU and memory of environment %s; its overload "
                        "checks and Max Memory Used are unknown",
                        environment.id[:8],
                        exc_info=problem,
                    )
            await asyncio.sleep(1.0)


def _sample(environments: list[ExecutionEnvironment]) -> list[Exception | None]:
    """Refresh each environment's usage (in a worker thread); what failed, by position."""
    problems: list[Exception | None] = []
    for environment in environments:
        try:
            environment.sample_usage()
        except Exception as exc:
            problems.append(exc)
        else:
            problems.append(None)
    return problems
