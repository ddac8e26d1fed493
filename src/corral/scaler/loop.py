"""The scaling loop: observe, plan, apply; plus on-demand starts for classic functions.

Each tick (every ``scale_interval_s``, and at once after a publish or when an environment
starts or ends):

1. For every version, compute its target: the minimum, and for Managed Instances versions
   the desired count from the scaling policy fed with the load since the last tick (peak
   in-flight, throttles, CPU).
2. ``environments.plan`` turns targets and observed environments into stops, starts and
   version-state marks.
3. Stops and marks are applied; each start is placed on an instance of the version's
   capacity provider (``placement.place``); what finds no room becomes demand.
4. For every capacity provider, ``instances.plan_instances`` turns demand, CPU and the
   ``MaxVCpuCount`` cap into launches, terminations and versions that cannot get their
   minimum (those fail with ``CapacityProviderScalingLimitExceeded``).

A failing tick is logged and retried at the next one; the loop never dies.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Coroutine
from typing import Any

from corral.agent.environment import EnvironmentConfig
from corral.agent.handle import EnvironmentHandle
from corral.agent.registry import EnvironmentRegistry
from corral.backends.base import ON_DEMAND, Backend, InstanceInfo
from corral.core import errors, models
from corral.core.arns import Partition
from corral.core.extras import ExtrasOf, FunctionExtras, ProviderExtras, ProviderExtrasOf
from corral.core.settings import Settings
from corral.core.tasks import TaskGroup
from corral.cost import catalog as cost_catalog
from corral.sandbox.interpreters import RuntimeRegistry
from corral.scaler import environments as env_plan
from corral.scaler import instances as inst_plan
from corral.scaler import placement, policy
from corral.scaler.views import InstanceView
from corral.store.catalog import Catalog
from corral.store.code import CodeStore

__all__ = ["ScalerLoop"]

_log = logging.getLogger("corral.scaler")
_LIVE = (models.EnvironmentState.STARTING, models.EnvironmentState.READY)


class ScalerLoop:
    """Keeps every function version's environments, and every provider's instances, right."""

    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Catalog,
        code: CodeStore,
        runtimes: RuntimeRegistry,
        backend: Backend,
        registry: EnvironmentRegistry,
        partition: Partition,
        extras: ExtrasOf | None = None,
        provider_extras: ProviderExtrasOf | None = None,
    ) -> None:
        self._settings = settings
        self._extras = extras or (lambda function: FunctionExtras())
        self._provider_extras = provider_extras or (lambda provider: ProviderExtras())
        # Scale to zero (corral:idle-timeout-s): when each version last had an invocation
        # (monotonic), the versions scaled to zero, and the ones woken but not yet ready.
        self._last_active: dict[models.VersionRef, float] = {}
        self._asleep: dict[models.VersionRef, str] = {}
        self._waking: set[models.VersionRef] = set()
        self._catalog = catalog
        self._code = code
        self._runtimes = runtimes
        self._backend = backend
        self._registry = registry
        self._partition = partition
        self._wake = asyncio.Event()
        # When each environment was first seen due for recycling (corral:recycle-* tags).
        self._recycle_since: dict[str, float] = {}
        self._failures: dict[tuple[models.VersionRef, str], env_plan.Failure] = {}
        self._desired: dict[models.VersionRef, policy.Decision] = {}
        self._types = cost_catalog.load()
        self._tasks = TaskGroup("scaler")
        self.ticks = 0

    def start(self) -> None:
        self._registry.subscribe(
            ready=self._on_ready, ended=self._on_ended, throttled=self._on_throttled
        )
        self._tasks.spawn(self._run(), name="loop")

    async def stop(self) -> None:
        await self._tasks.cancel_all()

    def poke(self) -> None:
        """Run a tick as soon as possible."""
        self._wake.set()

    # the loop ----------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("scaling tick failed; retrying at the next tick")
            try:
                await asyncio.wait_for(self._wake.wait(), self._settings.scale_interval_s)
            except TimeoutError:
                pass
            self._wake.clear()

    def _recycle(self, environment: EnvironmentHandle, now: float) -> tuple[str, float]:
        """Why a ready Managed Instances environment must be replaced ("" if it need not),
        and for how long it has been due."""
        if (
            environment.config.spec.managed is None
            or environment.state is not models.EnvironmentState.READY
        ):
            return "", 0.0
        reason = self._extras(environment.ref.function).recycle_reason(
            environment.invocations,
            environment.memory_utilization,
            time.time() - environment.created_s,
        )
        if not reason:
            return "", 0.0
        return reason, now - self._recycle_since.setdefault(environment.id, now)

    async def tick(self) -> None:
        """Observe, plan and apply once (see the module docstring)."""
        self.ticks += 1
        now = time.monotonic()
        targets = self._targets(now)
        observed = [
            env_plan.ObservedEnvironment(
                e.id,
                e.ref,
                e.config.revision_id,
                e.state,
                e.outstanding,
                now - e.last_used_mono,
                e.config.spec.managed is not None,
                *self._recycle(e, now),
            )
            for e in self._registry.all()
            if not e.reserved
        ]
        for gone in [k for k in self._recycle_since if self._registry.get(k) is None]:
            del self._recycle_since[gone]
        live_keys = {(t.ref, t.revision_id) for t in targets}
        for key in [k for k in self._failures if k not in live_keys]:
            del self._failures[key]
        actions = env_plan.plan(
            targets,
            observed,
            list(self._failures.values()),
            idle_timeout_s=self._settings.classic_idle_timeout_s,
        )
        minimums = {t.ref: t.min_environments for t in targets}
        demand = await self._apply(actions, minimums)
        self._plan_instances(demand, now)

    def _targets(self, now: float) -> list[env_plan.VersionTarget]:
        targets = []
        for version in self._catalog.all_versions():
            managed = version.spec.managed is not None
            if managed and not models.is_published(version.version):
                continue
            scaling = self._catalog.scaling(version.function_name, version.version)
            minimum = policy.minimum_environments(scaling) if managed else 0
            desired = self._desired_now(version, scaling, now) if managed else None
            asleep = self._sleep_reason(version, now) if managed else ""
            targets.append(
                env_plan.VersionTarget(
                    ref=version.ref,
                    revision_id=version.revision_id,
                    managed=managed,
                    min_environments=minimum,
                    state=version.state,
                    updating=version.last_update_status is models.LastUpdateStatus.IN_PROGRESS,
                    desired=desired,
                    asleep=asleep,
                )
            )
        for ref in [r for r in self._desired if self._catalog.version(*r) is None]:
            del self._desired[ref]
        for ref in [r for r in self._last_active if self._catalog.version(*r) is None]:
            self._last_active.pop(ref, None)
            self._asleep.pop(ref, None)
            self._waking.discard(ref)
        return targets

    # scale to zero -----------------------------------------------------------------------------
    def _sleep_reason(self, version: models.FunctionVersion, now: float) -> str:
        """Why a version is scaled to zero now ("" while it is not): its provider's
        ``corral:idle-timeout-s`` passed since its last invocation."""
        ref = version.ref
        assert version.spec.managed is not None
        idle_s = self._provider_extras(version.spec.managed.capacity_provider_name).idle_timeout_s
        envs = self._registry.for_version(ref)
        last = max(
            [self._last_active.get(ref, now), *(e.last_used_mono for e in envs)],
        )
        if any(e.outstanding for e in envs):
            last = now
        self._last_active[ref] = last
        settled = version.state is models.FunctionState.ACTIVE and (
            version.last_update_status is not models.LastUpdateStatus.IN_PROGRESS
        )
        if idle_s is None or not settled:
            self._asleep.pop(ref, None)
            return ""
        if ref not in self._asleep and now - last >= idle_s and ref not in self._waking:
            self._asleep[ref] = f"scaled to zero: no invocation for {idle_s} s"
            _log.info("%s: %s", ref, self._asleep[ref])
        return self._asleep.get(ref, "")

    def wake(self, ref: models.VersionRef) -> bool:
        """An invocation found no ready environment of ``ref``: if the version is scaled to
        zero, start it again (its minimum, at the next tick). True while it is waking."""
        if ref in self._asleep:
            del self._asleep[ref]
            self._waking.add(ref)
            self._last_active[ref] = time.monotonic()
            _log.info("%s: woken by an invocation", ref)
            self.poke()
        return ref in self._waking

    def scaled_to_zero(self) -> list[models.VersionRef]:
        """Versions scaled to zero now (``corral status``)."""
        return sorted(self._asleep)

    def _desired_now(
        self, version: models.FunctionVersion, scaling: models.ScalingConfig | None, now: float
    ) -> int:
        envs = [
            e
            for e in self._registry.for_version(version.ref)
            if e.state in _LIVE and e.config.revision_id == version.revision_id
        ]
        ready = [e for e in envs if e.state is models.EnvironmentState.READY]
        load = policy.VersionLoad(
            environments=len(envs),
            slots_per_environment=version.spec.concurrency,
            peak_inflight=sum(e.take_peak_outstanding() for e in envs),
            throttled=self._registry.take_throttles(version.ref),
            cpu_utilization=(sum(e.cpu_utilization for e in ready) / len(ready) if ready else 0.0),
        )
        before = self._desired.get(version.ref, policy.Decision(0, now))
        decision = policy.desired_environments(
            load,
            scaling,
            previous=before.desired,
            last_scale_in_s=before.last_scale_in_s,
            now_s=now,
            cooldown_s=self._settings.scale_in_cooldown_s,
        )
        self._desired[version.ref] = decision
        return decision.desired

    # applying ----------------------------------------------------------------------------------
    async def _apply(
        self, actions: list[env_plan.Action], minimums: dict[models.VersionRef, int]
    ) -> dict[str, list[inst_plan.Demand]]:
        launches: list[Coroutine[Any, Any, None]] = []
        demand: dict[str, list[inst_plan.Demand]] = defaultdict(list)
        views: dict[str, list[InstanceView]] = {}
        live = Counter(e.ref for e in self._registry.all() if e.state in _LIVE)
        starting = sum(
            1 for e in self._registry.all() if e.state is models.EnvironmentState.STARTING
        )
        budget = self._settings.max_starting_environments - starting
        starts: list[env_plan.StartEnvironments] = []
        for action in actions:
            if isinstance(action, env_plan.StopEnvironment):
                environment = self._registry.get(action.environment_id)
                if environment is not None:
                    drain_s = self._settings.drain_timeout_s
                    if action.until_done:  # nothing it runs may fail
                        drain_s = max(drain_s, environment.config.spec.timeout_s)
                    environment.request_drain(drain_s, action.reason)
            elif isinstance(action, env_plan.MarkVersion):
                self._mark(action)
            else:
                starts.append(action)
        # Versions short of their minimum first; then a few boots at a time (the rest
        # start at the next ticks).
        starts.sort(key=lambda a: live[a.ref] >= minimums.get(a.ref, 0))
        for action in starts:
            version = self._catalog.version(*action.ref)
            if version is None:
                continue
            now = max(0, min(action.count, budget))
            if version.spec.managed is None:
                launches.extend(self._launch(version, ON_DEMAND) for _ in range(now))
                budget -= now
                continue
            provider = version.spec.managed.capacity_provider_name
            if provider not in views:
                views[provider] = self._views(provider)
            placed, unplaced = self._place(version, now, views[provider])
            budget -= len(placed)
            launches.extend(self._launch(version, instance) for instance in placed)
            # Environments left for later ticks still tell whether instances are missing.
            _, later = self._place(version, action.count - now, list(views[provider]))
            if unplaced + later:
                managed = version.spec.managed
                demand[provider].append(
                    inst_plan.Demand(
                        ref=version.ref,
                        count=unplaced + later,
                        vcpus=managed.vcpus(version.spec.memory_size_mb),
                        memory_mib=version.spec.memory_size_mb,
                        for_minimum=max(
                            0, minimums.get(version.ref, 0) - live[version.ref] - len(placed)
                        ),
                    )
                )
        if launches:
            await asyncio.gather(*launches)
        return demand

    def _views(self, provider: str) -> list[InstanceView]:
        counts: dict[str, dict[models.VersionRef, int]] = defaultdict(lambda: defaultdict(int))
        for environment in self._registry.all():
            if environment.state in _LIVE:
                counts[environment.config.instance_id][environment.ref] += 1
        return [_view(i, counts[i.id]) for i in self._backend.instances(provider)]

    def _place(
        self, version: models.FunctionVersion, count: int, views: list[InstanceView]
    ) -> tuple[list[str], int]:
        """Place ``count`` environments on ``views`` (updated in place); return the instance
        ids chosen and how many found no room."""
        managed = version.spec.managed
        assert managed is not None
        vcpus = managed.vcpus(version.spec.memory_size_mb)
        memory = version.spec.memory_size_mb
        chosen: list[str] = []
        for _ in range(count):
            view = placement.place(views, version.ref, vcpus, memory)
            if view is None:
                return chosen, count - len(chosen)
            chosen.append(view.id)
            counts = dict(view.version_counts)
            counts[version.ref] = counts.get(version.ref, 0) + 1
            views[views.index(view)] = dataclasses.replace(
                view,
                vcpus_allocated=view.vcpus_allocated + vcpus,
                memory_allocated_mib=view.memory_allocated_mib + memory,
                version_counts=counts,
            )
        return chosen, 0

    async def _launch(self, version: models.FunctionVersion, instance_id: str) -> None:
        try:
            config = await self.environment_config(version, instance_id)
            await self._backend.launch_environment(instance_id, config)
        except errors.CorralError as exc:
            _log.warning("could not start an environment of %s: %s", version.ref, exc)
            self._failures[(version.ref, version.revision_id)] = env_plan.Failure(
                version.ref, version.revision_id, "InternalError", str(exc)
            )

    def _mark(self, action: env_plan.MarkVersion) -> None:
        version = self._catalog.version(*action.ref)
        if version is None or version.revision_id != action.revision_id:
            return
        settled = version.last_update_status is not models.LastUpdateStatus.IN_PROGRESS
        if (
            settled
            and version.state is action.state
            and version.state_reason_code == action.reason_code
        ):
            return
        failed = action.state is models.FunctionState.FAILED
        self._catalog.put_version(
            dataclasses.replace(
                version,
                state=action.state,
                state_reason=action.reason,
                state_reason_code=action.reason_code,
                last_update_status=(
                    models.LastUpdateStatus.FAILED if failed else models.LastUpdateStatus.SUCCESSFUL
                ),
                last_update_status_reason=action.reason if failed else "",
                last_update_status_reason_code=action.reason_code if failed else "",
            )
        )
        _log.info("%s is now %s %s", action.ref, action.state.value, action.reason)

    # instances --------------------------------------------------------------------------------
    def _plan_instances(self, demand: dict[str, list[inst_plan.Demand]], now: float) -> None:
        providers = {p.name: p for p in self._catalog.providers()}
        for instance in self._backend.instances():
            if instance.capacity_provider not in providers:
                self._backend.terminate_instance(instance.id, "capacity provider deleted")
        for provider in providers.values():
            instances = self._backend.instances(provider.name)
            wants = demand.get(provider.name, [])
            kind = self._instance_type(provider, wants, instances)
            actions = inst_plan.plan_instances(
                inst_plan.ProviderTarget(
                    name=provider.name,
                    max_vcpus=provider.max_vcpu_count,
                    target_cpu=_target_cpu(provider),
                    instance_type=kind,
                ),
                [_view(i) for i in instances],
                wants,
                now_s=now,
                cooldown_s=self._settings.scale_in_cooldown_s,
            )
            for action in actions:
                if isinstance(action, inst_plan.LaunchInstances):
                    _log.info(
                        "%s: launching %d x %s (%s)",
                        provider.name,
                        action.count,
                        action.instance_type.name,
                        action.reason,
                    )
                    for _ in range(action.count):
                        self._backend.launch_instance(provider, action.instance_type)
                elif isinstance(action, inst_plan.TerminateInstance):
                    self._backend.terminate_instance(action.instance_id, action.reason)
                else:
                    self._fail_minimum(action)

    def _instance_type(
        self,
        provider: models.CapacityProvider,
        wants: list[inst_plan.Demand],
        instances: list[InstanceInfo],
    ) -> models.InstanceType | None:
        candidates = cost_catalog.matching(self._types.types, provider.requirements)
        if wants:
            biggest = max(wants, key=lambda d: (d.vcpus, d.memory_mib))
            try:
                return cost_catalog.choose_type(candidates, biggest.vcpus, biggest.memory_mib)
            except errors.InvalidRequest as exc:
                self._backend.report_launch_failure(provider, exc.message)
                return None
        if instances:
            return instances[-1].instance_type
        return None

    def _fail_minimum(self, action: inst_plan.MinimumUnreachable) -> None:
        version = self._catalog.version(*action.ref)
        if version is None:
            return
        if version.state is models.FunctionState.PENDING or (
            version.last_update_status is models.LastUpdateStatus.IN_PROGRESS
        ):
            self._mark(
                env_plan.MarkVersion(
                    action.ref,
                    version.revision_id,
                    models.FunctionState.FAILED,
                    "CapacityProviderScalingLimitExceeded",
                    action.reason,
                )
            )

    # environments ----------------------------------------------------------------------------
    async def environment_config(
        self, version: models.FunctionVersion, instance_id: str
    ) -> EnvironmentConfig:
        """What an environment of ``version`` runs, and where.

        Raises:
            errors.BackendError: the runtime is not installed or the code is missing.
        """
        spec = version.spec
        interpreter = self._runtimes.available().get(spec.runtime)
        if interpreter is None:
            raise errors.BackendError(
                f"runtime {spec.runtime} is not installed; run `corral runtimes install`"
            )
        provider = spec.managed.capacity_provider_name if spec.managed else None
        # Normally unpacked already (when the code was uploaded); a check, or an unzip of a
        # tree that was removed, in a worker thread: this is the cold-start path.
        code_dir = await asyncio.to_thread(
            self._code.ensure_unpacked, base64.b64decode(spec.code_sha256).hex()
        )
        extras = self._extras(version.function_name)
        return EnvironmentConfig(
            ref=version.ref,
            spec=spec,
            function_arn=self._partition.function_arn(version.function_name),
            code_dir=code_dir,
            interpreter=interpreter,
            region=self._partition.region,
            log_group=spec.logging.group_for(version.function_name),
            init_timeout_s=policy.init_timeout_s(
                spec,
                self._settings.classic_init_timeout_s,
                self._settings.managed_init_timeout_s,
            ),
            instance_id=instance_id,
            revision_id=version.revision_id,
            capacity_provider=provider,
            fork_after_init=extras.fork_after_init,
            report_init=version.ref in self._waking,
            kill_on_timeout=extras.kill_on_timeout,
        )

    async def cold_start(self, version: models.FunctionVersion) -> EnvironmentHandle:
        """Start a classic environment for one waiting invocation and wait for it.

        The environment comes back reserved for the caller (no other invocation takes it),
        ready, or failed with ``failure`` set.

        Raises:
            errors.BackendError: no environment could be started at all.
        """
        config = await self.environment_config(version, ON_DEMAND)
        environment = await self._backend.launch_environment(ON_DEMAND, config)
        environment.reserved = True
        try:
            await environment.wait_ready()
        except errors.BackendError:
            pass
        return environment

    def _on_throttled(self, ref: models.VersionRef) -> None:
        # Saturation: scale out now rather than at the next tick.
        self.poke()

    def _on_ready(self, environment: EnvironmentHandle) -> None:
        if environment.config.spec.managed is not None:
            self._waking.discard(environment.ref)
            self.poke()

    def _on_ended(self, environment: EnvironmentHandle) -> None:
        failure = environment.failure
        if failure is not None and environment.config.spec.managed is not None:
            key = (environment.ref, environment.config.revision_id)
            self._failures.setdefault(
                key,
                env_plan.Failure(
                    environment.ref,
                    environment.config.revision_id,
                    failure.reason_code,
                    failure.reason,
                ),
            )
        self.poke()


def _target_cpu(provider: models.CapacityProvider) -> float:
    if provider.scaling_mode is models.ScalingMode.MANUAL:
        for policy_ in provider.scaling_policies:
            if policy_.metric == "LambdaCapacityProviderAverageCPUUtilization":
                return policy_.target_value / 100.0
        return 0.0
    return inst_plan.AUTO_TARGET_CPU


def _view(info: InstanceInfo, counts: dict[models.VersionRef, int] | None = None) -> InstanceView:
    return InstanceView(
        id=info.id,
        state=info.state,
        vcpus=info.vcpus,
        memory_mib=info.memory_mib,
        vcpus_allocated=info.vcpus_allocated,
        memory_allocated_mib=info.memory_allocated_mib,
        launched_seq=info.launched_seq,
        environments=info.environments,
        cpu_utilization=info.cpu_utilization,
        empty_since_s=info.empty_since_s,
        version_counts=dict(counts or {}),
    )
