"""The Ray backend: capacity providers' instances are nodes of a Ray cluster.

The server joins the cluster as a driver and watches its nodes (every half second). A node
that advertises ``corral`` is a candidate instance (``backends.nodes`` says which type it
counts as); an idle one is claimed when the scaler launches an instance of a provider whose
requirements allow its type, and belongs to that provider alone until it is released. The
instance is ``Pending`` while its agent starts on the node (a Ray actor, ``actor``) and the
server connects to it (``backends.remote``), then ``Running``. When no idle node fits, the
instance stays ``Pending`` and Ray's autoscaler is asked for one more node
(``RayCluster.request_nodes``, a target of every instance Corral wants); it is bound to the
first fitting node that joins.

Terminating an instance drains its environments, ends its agent, and gives the node back
(idle, for any provider); the autoscaler's target goes down with it. A node that dies, or an
agent that falls silent, loses its instance (``RemoteInstance.lose``): what it ran fails
with ``EnvironmentGone`` and the scaler starts replacements elsewhere.

Classic functions run on this host, in the on-demand pool, as with the local backend.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from corral.agent.agent import Agent
from corral.agent.environment import EnvironmentConfig, EnvironmentSettings
from corral.agent.handle import EnvironmentHandle
from corral.agent.registry import EnvironmentRegistry
from corral.backends.base import ON_DEMAND, InstanceInfo
from corral.backends.nodes import node_type
from corral.backends.ray.cluster import CORRAL_RESOURCE, ClusterNode, RayCluster
from corral.backends.remote import RemoteInstance
from corral.backends.systemlog import SystemLog
from corral.core import errors, models
from corral.core.settings import Settings
from corral.core.tasks import TaskGroup
from corral.cost import catalog
from corral.sandbox.base import Sandbox
from corral.store.code import CodeStore
from corral.telemetry import logs

__all__ = ["RayBackend"]

_log = logging.getLogger("corral.ray")
_WATCH_INTERVAL_S = 0.5
_KEEP_TERMINATED_S = 60.0
_SUSPECT_S = 30.0


@dataclass
class _Node:
    """A ``corral`` node and what Corral makes of it."""

    info: ClusterNode
    kind: models.InstanceType | None
    problem: str
    instance_id: str | None = None  # the instance it is now
    broken_until: float = 0.0  # an agent failed to start here: not before this time


@dataclass
class _Instance:
    id: str
    provider: models.CapacityProvider
    kind: models.InstanceType
    seq: int
    state: models.InstanceState = models.InstanceState.PENDING
    node_id: str | None = None
    remote: RemoteInstance | None = None
    actor: Any = None
    ended_mono: float = 0.0
    empty_since_mono: float | None = field(default_factory=time.monotonic)


class RayBackend:
    """Instances from a Ray cluster, one agent each, plus this host's on-demand pool."""

    def __init__(
        self,
        *,
        settings: Settings,
        sandbox: Sandbox,
        registry: EnvironmentRegistry,
        sink: logs.LogSink,
        code: CodeStore,
        env_settings: EnvironmentSettings,
        cluster: RayCluster | None = None,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._sink = sink
        self._code = code
        self._cluster = cluster or RayCluster(settings.ray_address, settings.ray_node_ip)
        self._types = catalog.load().types
        self._system_log = SystemLog(sink)
        self._secret = os.urandom(32)
        self._nodes: dict[str, _Node] = {}
        self._instances: dict[str, _Instance] = {}
        self._seq = 0
        self._tasks = TaskGroup("ray")
        self._requested: list[dict[str, float]] | None = None
        self.connected = False
        self._on_demand = Agent(
            ON_DEMAND,
            sandbox=sandbox,
            registry=registry,
            sink=sink,
            run_dir=settings.run_dir,
            env_settings=env_settings,
        )

    # lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Join the cluster and watch its nodes.

        Raises:
            errors.BackendError: the cluster cannot be reached.
        """
        await asyncio.to_thread(self._cluster.connect)
        self.connected = True
        self._on_demand.start()
        await self._watch_once()
        self._tasks.spawn(self._watch_forever(), name="watch")

    async def stop(self, drain_timeout_s: float) -> None:
        await self._tasks.cancel_all()
        stopping = [i for i in self._instances.values() if i.actor is not None]
        await asyncio.gather(
            self._on_demand.stop(drain_timeout_s),
            *(self._release(instance, drain_timeout_s) for instance in stopping),
            return_exceptions=True,
        )
        if self._requested:
            await asyncio.to_thread(self._cluster.request_nodes, [])
        await asyncio.to_thread(self._cluster.shutdown)

    @property
    def warnings(self) -> list[str]:
        """What the operator must know about the cluster now."""
        corral_nodes = [n for n in self._nodes.values() if n.info.alive]
        if not corral_nodes:
            return [
                f"the Ray cluster at {self._settings.ray_address} has no node with the "
                f"resource '{CORRAL_RESOURCE}': start one with `ray start --address ... "
                f"--resources '{{\"{CORRAL_RESOURCE}\": 1}}'` (docs/ray.md)"
            ]
        return [
            f"Ray node {n.info.node_id[:12]} ({n.info.address}) is not used: {n.problem}"
            for n in corral_nodes
            if n.problem
        ]

    def describe(self) -> dict[str, object]:
        corral_nodes = [n for n in self._nodes.values() if n.info.alive]
        return {
            "name": "ray",
            "address": self._settings.ray_address,
            "nodes": len(corral_nodes),
            "nodesInUse": sum(1 for n in corral_nodes if n.instance_id is not None),
            "nodesUnusable": sum(1 for n in corral_nodes if n.problem),
        }

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
        instance = _Instance("i-" + uuid.uuid4().hex[:17], provider, kind, self._seq)
        self._instances[instance.id] = instance
        node = self._idle_node(provider, kind)
        if node is not None:
            self._bind(instance, node)
        else:
            self._event(instance, "Launching", "INFO", self._waiting_message(kind))
            self._tasks.spawn(self._update_request(), name="request")
        return self._info(instance)

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

    async def launch_environment(
        self, instance_id: str, config: EnvironmentConfig
    ) -> EnvironmentHandle:
        if instance_id == ON_DEMAND:
            return await self._on_demand.launch(config)
        instance = self._instances.get(instance_id)
        if (
            instance is None
            or instance.state is not models.InstanceState.RUNNING
            or instance.remote is None
        ):
            raise errors.BackendError(f"instance {instance_id} is not running")
        instance.empty_since_mono = None
        environment = instance.remote.launch(uuid.uuid4().hex, config)
        self._registry.add(environment)
        return environment

    # nodes ----------------------------------------------------------------------------------
    async def _watch_forever(self) -> None:
        while True:
            await asyncio.sleep(_WATCH_INTERVAL_S)
            try:
                await self._watch_once()
            except Exception:
                _log.exception("reading the Ray cluster's nodes failed; trying again")

    async def _watch_once(self) -> None:
        seen = await asyncio.to_thread(self._cluster.nodes)
        listed = {info.node_id for info in seen}
        for node_id, node in self._nodes.items():
            if node_id not in listed and node.info.alive:  # forgotten by Ray: long dead
                node.info = dataclasses.replace(node.info, alive=False)
                if node.instance_id is not None:
                    self._node_died(node)
        for info in seen:
            known = self._nodes.get(info.node_id)
            if known is None and not info.corral:
                continue
            if known is not None and not info.alive:
                # A dead node's resources may be gone from Ray's answer: it is still ours.
                info = dataclasses.replace(info, corral=True)
            if known is None:
                typed = node_type(self._types, info.labels, info.cpus, info.memory_mib)
                known = self._nodes[info.node_id] = _Node(info, typed.instance_type, typed.problem)
                if info.alive:
                    _log.info(
                        "Ray node %s (%s) joined: %s",
                        info.node_id[:12],
                        info.address,
                        typed.problem
                        or f"a {typed.instance_type.name if typed.instance_type else '?'} instance",
                    )
            known.info = info
            if not info.alive and known.instance_id is not None:
                self._node_died(known)
        self._bind_waiting()

    def _node_died(self, node: _Node) -> None:
        instance = self._instances.get(node.instance_id or "")
        node.instance_id = None
        if instance is None:
            return
        if instance.remote is not None:
            instance.remote.lose(f"Ray node {node.info.node_id[:12]} died")
        else:
            self._ended(instance, "its Ray node died")

    def _idle_node(
        self, provider: models.CapacityProvider, kind: models.InstanceType
    ) -> _Node | None:
        """An idle node the provider may use, preferring the type asked for, then the
        smallest that holds as much."""
        now = time.monotonic()
        allowed = {t.name for t in catalog.matching(self._types, provider.requirements)}
        candidates = [
            n
            for n in self._nodes.values()
            if n.info.alive
            and n.kind is not None
            and n.instance_id is None
            and n.broken_until <= now
            and n.kind.name in allowed
        ]
        if not candidates:
            return None

        def rank(node: _Node) -> tuple[int, int, int, int]:
            assert node.kind is not None
            holds = node.kind.vcpus >= kind.vcpus and node.kind.memory_mib >= kind.memory_mib
            return (
                0 if node.kind.name == kind.name else 1,
                0 if holds else 1,
                node.kind.vcpus,
                node.kind.memory_mib,
            )

        return min(candidates, key=rank)

    def _bind(self, instance: _Instance, node: _Node) -> None:
        assert node.kind is not None
        node.instance_id = instance.id
        instance.node_id = node.info.node_id
        instance.kind = node.kind
        self._event(
            instance,
            "Launching",
            "INFO",
            f"Launching {node.kind.name} instance on Ray node {node.info.node_id[:12]} "
            f"({node.info.address})",
        )
        self._tasks.spawn(self._boot(instance, node), name=f"boot:{instance.id}")

    def _bind_waiting(self) -> None:
        waiting = [
            i
            for i in self._instances.values()
            if i.state is models.InstanceState.PENDING and i.node_id is None
        ]
        for instance in sorted(waiting, key=lambda i: i.seq):
            node = self._idle_node(instance.provider, instance.kind)
            if node is None:
                continue
            self._bind(instance, node)
            self._tasks.spawn(self._update_request(), name="request")

    async def _boot(self, instance: _Instance, node: _Node) -> None:
        try:
            actor, address = await asyncio.to_thread(
                self._cluster.start_agent,
                node.info.node_id,
                self._settings,
                instance.id,
                self._secret,
            )
            instance.actor = actor
            remote = RemoteInstance(
                instance.id,
                address,
                self._secret,
                listener=self._registry,
                sink=self._sink,
                code=self._code,
                on_lost=lambda lost: self._lost(instance, lost),
            )
            await remote.connect()
        except errors.CorralError as exc:
            node.instance_id = None
            node.broken_until = time.monotonic() + 60.0
            self._system_log.launch_failed(instance.provider, exc.message)
            self._ended(instance, "its agent did not start")
            if instance.actor is not None:
                await asyncio.to_thread(self._cluster.stop_agent, instance.actor, 5.0)
            return
        if instance.state is not models.InstanceState.PENDING:  # terminated meanwhile
            remote.close()
            await asyncio.to_thread(self._cluster.stop_agent, actor, 30.0)
            return
        instance.remote = remote
        instance.state = models.InstanceState.RUNNING
        instance.empty_since_mono = time.monotonic()
        self._event(
            instance,
            "Launched",
            "INFO",
            f"Successfully launched {instance.kind.name} instance {instance.id} on Ray node "
            f"{node.info.node_id[:12]} ({address[0]}:{address[1]})",
        )

    def _lost(self, instance: _Instance, remote: RemoteInstance) -> None:
        if instance.state is models.InstanceState.TERMINATED:
            return
        self._event(
            instance,
            "HealthCheckFailed",
            "WARN",
            f"Instance {instance.id} was lost: {remote.lost_reason}",
        )
        node = self._nodes.get(instance.node_id or "")
        if node is not None and node.instance_id == instance.id:
            node.instance_id = None
            # Most likely the node is dying and Ray has not said so yet: not there again
            # before Ray has had time to tell (its default health checks take up to 30 s).
            node.broken_until = time.monotonic() + _SUSPECT_S
        self._ended(instance, remote.lost_reason)
        if instance.actor is not None:
            self._tasks.spawn(
                asyncio.to_thread(self._cluster.stop_agent, instance.actor, 5.0), name="kill"
            )

    async def _terminate(self, instance: _Instance) -> None:
        await self._release(instance, self._settings.drain_timeout_s)
        node = self._nodes.get(instance.node_id or "")
        if node is not None and node.instance_id == instance.id:
            node.instance_id = None
        self._ended(instance, "terminated")
        await self._update_request()

    async def _release(self, instance: _Instance, drain_timeout_s: float) -> None:
        """Drain the instance's environments, then end its agent."""
        if instance.remote is not None:
            await asyncio.gather(
                *(e.drain(drain_timeout_s) for e in instance.remote.environments),
                return_exceptions=True,
            )
            instance.remote.close()
        if instance.actor is not None:
            await asyncio.to_thread(self._cluster.stop_agent, instance.actor)
            instance.actor = None

    def _ended(self, instance: _Instance, why: str) -> None:
        if instance.state is models.InstanceState.TERMINATED:
            return
        instance.state = models.InstanceState.TERMINATED
        instance.ended_mono = time.monotonic()
        self._event(instance, "Terminated", "INFO", f"Terminated instance {instance.id}: {why}")

    async def _update_request(self) -> None:
        """Tell the autoscaler how many ``corral`` nodes Corral wants now, in all."""
        wanted = [
            {CORRAL_RESOURCE: 1.0, "CPU": float(i.kind.vcpus)}
            for i in self._instances.values()
            if i.state in (models.InstanceState.PENDING, models.InstanceState.RUNNING)
        ]
        if wanted == self._requested:
            return
        self._requested = wanted
        try:
            await asyncio.to_thread(self._cluster.request_nodes, wanted)
        except Exception:
            _log.exception("asking Ray's autoscaler for nodes failed")

    # views ------------------------------------------------------------------------------------
    def _info(self, instance: _Instance) -> InstanceInfo:
        envs = [] if instance.remote is None else instance.remote.environments
        kind = instance.kind
        if envs:
            instance.empty_since_mono = None
        elif instance.empty_since_mono is None:
            instance.empty_since_mono = time.monotonic()
        cpu = sum(e.cpu_utilization * e.config.vcpus for e in envs) / max(1, kind.vcpus)
        memory = sum(e.memory_bytes for e in envs) / max(1, kind.memory_mib * 1024 * 1024)
        return InstanceInfo(
            id=instance.id,
            capacity_provider=instance.provider.name,
            instance_type=kind,
            state=instance.state,
            availability_zone=self._settings.region + "a",
            launched_seq=instance.seq,
            vcpus_allocated=sum(e.config.vcpus for e in envs),
            memory_allocated_mib=sum(e.config.spec.memory_size_mb for e in envs),
            environments=len(envs),
            cpu_utilization=cpu,
            memory_utilization=memory,
            empty_since_s=instance.empty_since_mono,
            node=instance.node_id or "",
            address="" if instance.remote is None else ":".join(map(str, instance.remote.address)),
        )

    def _waiting_message(self, kind: models.InstanceType) -> str:
        return (
            f"Waiting for Ray's autoscaler: no idle node with the resource '{CORRAL_RESOURCE}' "
            f"fits ({kind.name} asked for)"
        )

    def _event(self, instance: _Instance, event: str, level: str, message: str) -> None:
        self._system_log.event(
            instance.provider,
            event,
            level,
            message,
            instance_id=instance.id,
            zones=(self._settings.region + "a",),
            types=(instance.kind.name,),
        )
