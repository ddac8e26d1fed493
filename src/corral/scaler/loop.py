"""The scaling loop: observe, plan, apply; plus on-demand starts for classic functions.

The loop ticks every ``scale_interval_s`` and whenever something happens (a publish, an
environment becoming ready or failing). Each tick computes targets from the catalog, reads
the registry, calls the pure ``environments.plan`` and applies the actions through the
backend. A failing step is logged and retried at the next tick; the loop never dies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Coroutine
from typing import Any

from corral.agent.environment import EnvironmentConfig, ExecutionEnvironment
from corral.agent.registry import EnvironmentRegistry
from corral.backends.base import Backend
from corral.core import errors, models
from corral.core.arns import Partition
from corral.core.settings import Settings
from corral.core.tasks import TaskGroup
from corral.sandbox.interpreters import RuntimeRegistry
from corral.scaler import environments as env_plan
from corral.scaler import policy
from corral.store.catalog import Catalog
from corral.store.code import CodeStore

__all__ = ["ScalerLoop"]

_log = logging.getLogger("corral.scaler")


class ScalerLoop:
    """Keeps every function version's environments where they should be."""

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
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._code = code
        self._runtimes = runtimes
        self._backend = backend
        self._registry = registry
        self._partition = partition
        self._wake = asyncio.Event()
        self._failures: dict[tuple[models.VersionRef, str], env_plan.Failure] = {}
        self._tasks = TaskGroup("scaler")
        self.ticks = 0

    def start(self) -> None:
        self._registry.subscribe(ready=self._on_ready, ended=self._on_ended)
        self._tasks.spawn(self._run(), name="loop")

    async def stop(self) -> None:
        await self._tasks.cancel_all()

    def poke(self) -> None:
        """Run a tick as soon as possible."""
        self._wake.set()

    # the loop --------------------------------------------------------------------------------
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

    async def tick(self) -> None:
        """Observe, plan and apply once."""
        self.ticks += 1
        targets = self._targets()
        now = time.monotonic()
        observed = [
            env_plan.ObservedEnvironment(
                id=e.id,
                ref=e.ref,
                revision_id=e.config.revision_id,
                state=e.state,
                outstanding=e.outstanding,
                idle_s=now - e.last_used_mono,
                managed=e.config.spec.managed is not None,
            )
            for e in self._registry.all()
            if not e.reserved
        ]
        live_keys = {(t.ref, t.revision_id) for t in targets}
        for key in [k for k in self._failures if k not in live_keys]:
            del self._failures[key]
        actions = env_plan.plan(
            targets,
            observed,
            list(self._failures.values()),
            idle_timeout_s=self._settings.classic_idle_timeout_s,
        )
        await self._apply(actions)

    def _targets(self) -> list[env_plan.VersionTarget]:
        targets = []
        for version in self._catalog.all_versions():
            managed = version.spec.managed is not None
            if managed and not models.is_published(version.version):
                continue
            scaling = self._catalog.scaling(version.function_name, version.version)
            targets.append(
                env_plan.VersionTarget(
                    ref=version.ref,
                    revision_id=version.revision_id,
                    managed=managed,
                    min_environments=policy.minimum_environments(scaling) if managed else 0,
                    state=version.state,
                    updating=version.last_update_status is models.LastUpdateStatus.IN_PROGRESS,
                )
            )
        return targets

    async def _apply(self, actions: list[env_plan.Action]) -> None:
        launches: list[Coroutine[Any, Any, None]] = []
        for action in actions:
            if isinstance(action, env_plan.StopEnvironment):
                environment = self._registry.get(action.environment_id)
                if environment is not None:
                    environment.request_drain(self._settings.drain_timeout_s, action.reason)
            elif isinstance(action, env_plan.StartEnvironments):
                version = self._catalog.version(*action.ref)
                if version is not None:
                    launches.extend(self._launch(version) for _ in range(action.count))
            else:
                self._mark(action)
        if launches:
            await asyncio.gather(*launches)

    async def _launch(self, version: models.FunctionVersion) -> None:
        try:
            config = self.environment_config(version)
            provider = config.capacity_provider
            await self._backend.launch_environment(provider, config)
        except errors.CorralError as exc:
            _log.warning("could not start an environment of %s: %s", version.ref, exc)
            self._failures[(version.ref, version.revision_id)] = env_plan.Failure(
                version.ref, version.revision_id, "InternalError", str(exc)
            )

    def _mark(self, action: env_plan.MarkVersion) -> None:
        version = self._catalog.version(*action.ref)
        if version is None or version.revision_id != action.revision_id:
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

    # environments ----------------------------------------------------------------------------
    def environment_config(self, version: models.FunctionVersion) -> EnvironmentConfig:
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
        return EnvironmentConfig(
            ref=version.ref,
            spec=spec,
            function_arn=self._partition.function_arn(version.function_name),
            code_dir=self._code.ensure_unpacked(_hex_of(spec.code_sha256)),
            interpreter=interpreter,
            region=self._partition.region,
            log_group=spec.logging.log_group or f"/aws/lambda/{version.function_name}",
            init_timeout_s=policy.init_timeout_s(spec, self._settings.classic_init_timeout_s),
            instance_id=self._backend.instance_id(provider),
            revision_id=version.revision_id,
            capacity_provider=provider,
        )

    async def cold_start(self, version: models.FunctionVersion) -> ExecutionEnvironment:
        """Start a classic environment for one waiting invocation and wait for it.

        The environment comes back reserved for the caller (no other invocation takes it),
        ready, or failed with ``failure`` set.

        Raises:
            errors.BackendError: no environment could be started at all.
        """
        config = self.environment_config(version)
        environment = await self._backend.launch_environment(None, config)
        environment.reserved = True
        try:
            await environment.wait_ready()
        except errors.BackendError:
            pass
        return environment

    def _on_ready(self, environment: ExecutionEnvironment) -> None:
        if environment.config.spec.managed is not None:
            self.poke()

    def _on_ended(self, environment: ExecutionEnvironment) -> None:
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


def _hex_of(code_sha256: str) -> str:
    import base64

    return base64.b64decode(code_sha256).hex()
