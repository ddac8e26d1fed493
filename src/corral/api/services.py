"""The composition root: build every service from the settings, start and stop them in order.

Start order: store -> backend -> scaler -> async invoker. Stop order is the reverse, after
the HTTP server stopped accepting: async workers stop taking events (queued events stay in
SQLite), the scaler stops, then every execution environment is drained (bounded by
``drain_timeout_s``) and stopped, then the database is closed. Errors while stopping are
collected and logged so one failing part does not leave the others running.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from corral.agent.environment import EnvironmentSettings
from corral.agent.registry import EnvironmentRegistry
from corral.auth.keyring import KeyRing, write_credentials
from corral.backends.base import Backend
from corral.backends.local import LocalBackend
from corral.core import errors, extras, models
from corral.core.arns import Partition
from corral.core.settings import Settings
from corral.router.asyncq import AsyncInvoker
from corral.router.router import Router
from corral.sandbox.base import Sandbox
from corral.sandbox.choose import open_sandbox
from corral.sandbox.interpreters import RuntimeRegistry
from corral.scaler.loop import ScalerLoop
from corral.store.catalog import Catalog
from corral.store.code import CodeStore
from corral.store.db import Database
from corral.store.events import EventTable
from corral.store.keys import KeyTable
from corral.store.lock import DataDirLock
from corral.store.stacks import StackTable
from corral.telemetry.journal import RequestJournal
from corral.telemetry.logdb import Retention
from corral.telemetry.logstore import DiscardedLogs, LogStore
from corral.telemetry.metrics import InvocationMetrics, MetricHistory

__all__ = ["Services"]

_log = logging.getLogger("corral.services")


@dataclass
class Services:
    """Every long-lived part of a running Corral."""

    settings: Settings
    partition: Partition
    db: Database
    catalog: Catalog
    keys: KeyRing
    code: CodeStore
    events: EventTable
    stacks: StackTable
    runtimes: RuntimeRegistry
    registry: EnvironmentRegistry
    logs: LogStore
    sandbox: Sandbox
    sandbox_warnings: tuple[str, ...]
    lock: DataDirLock
    metrics: InvocationMetrics
    history: MetricHistory
    backend: Backend
    scaler: ScalerLoop
    router: Router
    async_invoker: AsyncInvoker
    # A capacity provider's corral: tags, by its name.
    provider_extras: extras.ProviderExtrasOf
    # The last requests' stories (the console's request view).
    journal: RequestJournal
    started: bool = field(default=False)
    # Where this server answers (``http://HOST:PORT``), once it listens: function URLs
    # are built from it (or from ``CORRAL_PUBLIC_URL``).
    endpoint: str = field(default="")

    def function_url(self, url_id: str) -> str:
        """A function URL as callers reach it: a path under Corral's address."""
        base = (self.settings.public_url or self.endpoint or "http://127.0.0.1").rstrip("/")
        return f"{base}/lambda-url/{url_id}/"

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Build every service; nothing runs until ``start``.

        Raises:
            errors.InvalidRequest: a setting names something this build cannot do.
        """
        # Absolute from here on: paths under it are handed to runc, which resolves relative
        # ones against the container bundle, not against where Corral was started.
        settings = dataclasses.replace(settings, data_dir=settings.data_dir.resolve())
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        lock = DataDirLock(settings.data_dir)
        lock.acquire()
        try:
            _check(settings)
            shutil.rmtree(settings.run_dir, ignore_errors=True)
            settings.run_dir.mkdir(parents=True, mode=0o700)
            recent = _log_store(settings)
            metrics_on = _metrics_on(settings)
            choice = open_sandbox(settings)
        except BaseException:
            lock.release()
            raise
        sandbox = choice.sandbox
        partition = Partition(settings.region, settings.account_id)
        db = Database(settings.database_path, synchronous=settings.db_sync)
        catalog = Catalog(db)
        keys = KeyRing(KeyTable(db))
        # Every server has an admin key, handed to local tools through this file.
        write_credentials(settings.credentials_path, keys.admin(time.time()))
        code = CodeStore(settings.code_dir)
        events = EventTable(db)
        runtimes = RuntimeRegistry(settings.runtimes_dir)
        registry = EnvironmentRegistry()
        backend = _backend(settings, sandbox, registry, recent, code)

        def extras_of(function: str) -> extras.FunctionExtras:
            return extras.stored_function_extras(catalog.tags.get(partition.function_arn(function)))

        def provider_extras_of(provider: str) -> extras.ProviderExtras:
            arn = partition.capacity_provider_arn(provider)
            return extras.stored_provider_extras(catalog.tags.get(arn))

        scaler = ScalerLoop(
            settings=settings,
            catalog=catalog,
            code=code,
            runtimes=runtimes,
            backend=backend,
            registry=registry,
            partition=partition,
            extras=extras_of,
            provider_extras=provider_extras_of,
        )
        metrics = InvocationMetrics()
        journal = RequestJournal()
        router = Router(
            settings=settings,
            catalog=catalog,
            registry=registry,
            cold_start=scaler.cold_start,
            metrics=metrics if metrics_on else None,
            extras=extras_of,
            wake=scaler.wake,
            journal=journal,
        )
        async_invoker = AsyncInvoker(
            settings=settings, catalog=catalog, events=events, router=router, partition=partition
        )
        return cls(
            settings=settings,
            partition=partition,
            db=db,
            catalog=catalog,
            keys=keys,
            code=code,
            events=events,
            stacks=StackTable(db),
            runtimes=runtimes,
            registry=registry,
            logs=recent,
            sandbox=sandbox,
            sandbox_warnings=choice.warnings,
            lock=lock,
            metrics=metrics,
            history=MetricHistory(),
            backend=backend,
            scaler=scaler,
            router=router,
            async_invoker=async_invoker,
            provider_extras=provider_extras_of,
            journal=journal,
        )

    async def start(self) -> None:
        await self.logs.start()
        self._restore_versions()
        await self.backend.start()
        self.scaler.start()
        self.async_invoker.start()
        self.started = True

    def _restore_versions(self) -> None:
        """After a restart no environment runs: published Managed Instances versions go back
        to ``Pending`` (reason ``Restoring``) until their minimum is ready again."""
        for version in self.catalog.all_versions():
            if (
                version.spec.managed is not None
                and models.is_published(version.version)
                and version.state is models.FunctionState.ACTIVE
            ):
                self.catalog.put_version(
                    dataclasses.replace(
                        version,
                        state=models.FunctionState.PENDING,
                        state_reason="The function is being restored after a restart.",
                        state_reason_code="Restoring",
                    )
                )

    async def stop(self) -> None:
        """Stop in reverse order, draining environments. Each step runs whatever the
        others did: a failure is logged and the next step still runs (logs are flushed
        even if the sandbox sweep failed, the lock is released last)."""

        async def sandbox_sweep() -> None:
            self.sandbox.close()

        async def database() -> None:
            self.db.close()

        async def scratch() -> None:
            shutil.rmtree(self.settings.run_dir, ignore_errors=True)

        async def lock() -> None:
            self.lock.release()

        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("async invocations", self.async_invoker.stop),
            ("the scaler", self.scaler.stop),
            ("execution environments", lambda: self.backend.stop(self.settings.drain_timeout_s)),
            ("the sandbox", sandbox_sweep),
            ("the log store", self.logs.close),
            ("the database", database),
            ("the scratch directory", scratch),
            ("the data directory lock", lock),
        ]
        for what, step in steps:
            try:
                await step()
            except Exception:
                _log.exception("error while stopping %s", what)


def _log_store(settings: Settings) -> LogStore:
    """Where logs go (``CORRAL_LOG_STORE``).

    Raises:
        errors.InvalidRequest: an unknown choice.
    """
    if settings.log_store == "off":
        return DiscardedLogs()
    if settings.log_store != "sqlite":
        raise errors.InvalidRequest(
            f"CORRAL_LOG_STORE={settings.log_store!r} is not one of sqlite, off"
        )
    return LogStore(
        settings.log_database_path,
        Retention(max_age_s=settings.log_retention_s, max_bytes=settings.log_max_bytes),
    )


def _metrics_on(settings: Settings) -> bool:
    """Whether invocations are counted (``CORRAL_METRICS``).

    Raises:
        errors.InvalidRequest: an unknown choice.
    """
    if settings.metrics not in ("on", "off"):
        raise errors.InvalidRequest(f"CORRAL_METRICS={settings.metrics!r} is not one of on, off")
    return settings.metrics == "on"


def _check(settings: Settings) -> None:
    """Refuse settings that name something unknown, before anything starts.

    Raises:
        errors.InvalidRequest: with what to set instead.
    """
    if settings.db_sync not in ("full", "normal"):
        raise errors.InvalidRequest(
            f"CORRAL_DB_SYNC={settings.db_sync!r} is not one of full, normal"
        )
    if settings.backend not in ("local", "ray"):
        raise errors.InvalidRequest(f"CORRAL_BACKEND={settings.backend!r} is not one of local, ray")
    if settings.backend == "ray" and not settings.ray_address:
        raise errors.InvalidRequest(
            "the ray backend needs the address of the cluster's head: --ray-address "
            "HOST:PORT (CORRAL_RAY_ADDRESS)"
        )


def _backend(
    settings: Settings,
    sandbox: Sandbox,
    registry: EnvironmentRegistry,
    sink: LogStore,
    code: CodeStore,
) -> Backend:
    """Where instances come from (``CORRAL_BACKEND``): this host, or a Ray cluster.

    Raises:
        errors.InvalidRequest: an unknown backend, or ``ray`` without an address or Ray.
    """
    env_settings = EnvironmentSettings(
        stop_grace_s=settings.environment_stop_grace_s,
        stuck_worker_grace_s=settings.stuck_worker_grace_s,
        log_rate_bytes_per_s=settings.log_rate_bytes_per_s,
    )
    if settings.backend == "local":
        return LocalBackend(
            sandbox=sandbox,
            registry=registry,
            sink=sink,
            run_dir=settings.run_dir,
            env_settings=env_settings,
            launch_delay_s=settings.instance_launch_delay_s,
            region=settings.region,
        )
    try:
        from corral.backends.ray.backend import RayBackend
    except ImportError as exc:
        raise errors.InvalidRequest(
            f"the ray backend needs Ray ({exc}): pip install 'corral[ray]'"
        ) from exc
    return RayBackend(
        settings=settings,
        sandbox=sandbox,
        registry=registry,
        sink=sink,
        code=code,
        env_settings=env_settings,
    )
