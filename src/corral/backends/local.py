"""The local backend: this host is every capacity provider's instance.

Each capacity provider gets one logical instance whose agent runs environments on this host;
classic functions share an on-demand pool. (The fleet of several instances per provider,
each with its vCPU and memory budget, builds on this.)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import psutil

from corral.agent.agent import Agent
from corral.agent.environment import EnvironmentConfig, ExecutionEnvironment
from corral.agent.registry import EnvironmentRegistry
from corral.backends.base import InstanceInfo
from corral.sandbox.base import Sandbox
from corral.telemetry.logs import LogSink

__all__ = ["LocalBackend"]

_ON_DEMAND = "on-demand"


class LocalBackend:
    """One agent per capacity provider (plus one for classic functions), all on this host."""

    def __init__(
        self,
        *,
        sandbox: Sandbox,
        registry: EnvironmentRegistry,
        sink: LogSink,
        run_dir: Path,
        stop_grace_s: float,
    ) -> None:
        self._sandbox = sandbox
        self._registry = registry
        self._sink = sink
        self._run_dir = run_dir
        self._stop_grace_s = stop_grace_s
        self._agents: dict[str, Agent] = {}
        self._started = False

    def start(self) -> None:
        self._started = True
        for agent in self._agents.values():
            agent.start()

    async def stop(self, drain_timeout_s: float) -> None:
        agents = list(self._agents.values())
        await asyncio.gather(*(a.stop(drain_timeout_s) for a in agents))

    def instance_id(self, capacity_provider: str | None) -> str:
        key = capacity_provider or _ON_DEMAND
        return "i-" + hashlib.sha256(key.encode()).hexdigest()[:17]

    def instances(self) -> list[InstanceInfo]:
        memory_mib = int(psutil.virtual_memory().total // (1024 * 1024))
        return [
            InstanceInfo(
                id=agent.instance_id,
                capacity_provider=None if key == _ON_DEMAND else key,
                instance_type="host",
                state="Running",
                vcpus=os.cpu_count() or 1,
                memory_mib=memory_mib,
            )
            for key, agent in self._agents.items()
        ]

    async def launch_environment(
        self, capacity_provider: str | None, config: EnvironmentConfig
    ) -> ExecutionEnvironment:
        return await self._agent(capacity_provider).launch(config)

    def _agent(self, capacity_provider: str | None) -> Agent:
        key = capacity_provider or _ON_DEMAND
        agent = self._agents.get(key)
        if agent is None:
            agent = Agent(
                self.instance_id(capacity_provider),
                sandbox=self._sandbox,
                registry=self._registry,
                sink=self._sink,
                run_dir=self._run_dir,
                stop_grace_s=self._stop_grace_s,
            )
            self._agents[key] = agent
            if self._started:
                agent.start()
        return agent
