"""The catalog: every function, version, alias, capacity provider and scaling config, in
memory and in SQLite.

All writes go through the catalog: each is one SQLite transaction, then the in-memory mirror
is updated, so reads (the invoke path reads on every request) never touch the disk and never
see a half-written change. Loaded in full at start-up; the data is small (control plane).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from corral.core import models
from corral.store import codec
from corral.store.aliases import AliasTable
from corral.store.capacity_providers import CapacityProviderTable
from corral.store.db import Database
from corral.store.functions import FunctionTable
from corral.store.qualified import QualifierConfigTable
from corral.store.scaling import ScalingConfigTable
from corral.store.tags import TagTable
from corral.store.versions import VersionTable, version_seq

__all__ = ["EVENT_INVOKE", "URL", "Catalog"]

# Kinds of per-qualifier configuration (``store.qualified``).
EVENT_INVOKE = "event-invoke"
URL = "url"


class Catalog:
    """Read-through mirror of the control-plane tables."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._functions_t = FunctionTable(db)
        self._versions_t = VersionTable(db)
        self._aliases_t = AliasTable(db)
        self._providers_t = CapacityProviderTable(db)
        self._scaling_t = ScalingConfigTable(db)
        self._qualified_t = QualifierConfigTable(db)
        self.tags = TagTable(db)
        self._functions: dict[str, models.Function] = {}
        self._versions: dict[str, dict[str, models.FunctionVersion]] = {}
        self._aliases: dict[str, dict[str, models.Alias]] = {}
        self._providers: dict[str, models.CapacityProvider] = {}
        self._scaling: dict[tuple[str, str], models.ScalingConfig] = {}
        # kind -> (function, qualifier) -> configuration (``store.qualified``)
        self._qualified: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self._reserved_total: int | None = None  # computed when first asked, then kept
        self._load()

    def _load(self) -> None:
        for function in self._functions_t.list():
            self._functions[function.name] = function
            self._versions[function.name] = {}
            self._aliases[function.name] = {
                a.name: a for a in self._aliases_t.list_for(function.name)
            }
        for version in self._versions_t.list_all():
            self._versions.setdefault(version.function_name, {})[version.version] = version
        for provider in self._providers_t.list():
            self._providers[provider.name] = provider
        for row in self.db.query("SELECT function_name, qualifier FROM scaling_configs"):
            config = self._scaling_t.get(row["function_name"], row["qualifier"])
            if config is not None:
                self._scaling[(row["function_name"], row["qualifier"])] = config
        for kind, function_name, qualifier, data in self._qualified_t.list_all():
            self._qualified.setdefault(kind, {})[(function_name, qualifier)] = data

    # functions -------------------------------------------------------------------------------
    def function(self, name: str) -> models.Function | None:
        return self._functions.get(name)

    def functions(self) -> list[models.Function]:
        return [self._functions[n] for n in sorted(self._functions)]

    def reserved_total(self) -> int:
        """The concurrency every function together reserved (read on each classic invoke)."""
        if self._reserved_total is None:
            self._reserved_total = sum(
                f.reserved_concurrency or 0 for f in self._functions.values()
            )
        return self._reserved_total

    def create_function(
        self,
        function: models.Function,
        latest: models.FunctionVersion,
        tags: dict[str, str],
        tags_arn: str,
    ) -> None:
        """Create a function with its ``$LATEST`` (and tags) in one transaction."""
        with self.db.transaction() as conn:
            self._functions_t.insert(conn, function)
            self._versions_t.put(conn, latest)
            if tags:
                self.tags.put_in(conn, tags_arn, tags)
        self._functions[function.name] = function
        self._versions[function.name] = {latest.version: latest}
        self._aliases[function.name] = {}

    def delete_function(self, name: str, tags_arn: str) -> None:
        with self.db.transaction() as conn:
            self._functions_t.delete(conn, name)
            self.tags.put_in(conn, tags_arn, {})
        self._functions.pop(name, None)
        self._reserved_total = None
        self._versions.pop(name, None)
        self._aliases.pop(name, None)
        for key in [k for k in self._scaling if k[0] == name]:
            del self._scaling[key]
        self._forget_qualified(name, None)

    def set_reserved_concurrency(self, name: str, value: int | None) -> None:
        self._functions_t.set_reserved_concurrency(name, value)
        self._functions[name] = dataclasses.replace(
            self._functions[name], reserved_concurrency=value
        )
        self._reserved_total = None

    # versions -------------------------------------------------------------------------------
    def version(self, function_name: str, version: str) -> models.FunctionVersion | None:
        return self._versions.get(function_name, {}).get(version)

    def versions(self, function_name: str) -> list[models.FunctionVersion]:
        found = self._versions.get(function_name, {})
        return sorted(found.values(), key=lambda v: version_seq(v.version))

    def all_versions(self) -> list[models.FunctionVersion]:
        return [v for name in sorted(self._versions) for v in self.versions(name)]

    def put_version(self, version: models.FunctionVersion) -> None:
        with self.db.transaction() as conn:
            self._versions_t.put(conn, version)
        self._versions.setdefault(version.function_name, {})[version.version] = version

    def publish_version(
        self, version: models.FunctionVersion, source: models.FunctionVersion
    ) -> models.FunctionVersion:
        """Store a new numbered version published from ``source`` (``$LATEST``, with its new
        revision), claiming the number and recording what it came from, in one transaction."""
        digest = codec.spec_digest(source.spec)
        with self.db.transaction() as conn:
            number = self._functions_t.next_version_number(conn, version.function_name, digest)
            numbered = dataclasses.replace(version, version=str(number))
            self._versions_t.put(conn, numbered)
            self._versions_t.put(conn, source)
        self._functions[version.function_name] = dataclasses.replace(
            self._functions[version.function_name],
            last_version_number=number,
            published_spec=digest,
        )
        self._versions[version.function_name][numbered.version] = numbered
        self._versions[version.function_name][source.version] = source
        return numbered

    def delete_version(self, function_name: str, version: str) -> None:
        with self.db.transaction() as conn:
            self._versions_t.delete(conn, function_name, version)
            conn.execute(
                "DELETE FROM scaling_configs WHERE function_name = ? AND qualifier = ?",
                (function_name, version),
            )
            self._qualified_t.delete_qualifier_in(conn, function_name, version)
        self._versions.get(function_name, {}).pop(version, None)
        self._scaling.pop((function_name, version), None)
        self._forget_qualified(function_name, version)

    # aliases ----------------------------------------------------------------------------------
    def alias(self, function_name: str, name: str) -> models.Alias | None:
        return self._aliases.get(function_name, {}).get(name)

    def aliases(self, function_name: str) -> list[models.Alias]:
        found = self._aliases.get(function_name, {})
        return [found[n] for n in sorted(found)]

    def put_alias(self, alias: models.Alias) -> None:
        self._aliases_t.put(alias)
        self._aliases.setdefault(alias.function_name, {})[alias.name] = alias

    def delete_alias(self, function_name: str, name: str) -> None:
        self._aliases_t.delete(function_name, name)
        with self.db.transaction() as conn:
            self._qualified_t.delete_qualifier_in(conn, function_name, name)
        self._aliases.get(function_name, {}).pop(name, None)
        self._forget_qualified(function_name, name)

    # capacity providers --------------------------------------------------------------------
    def provider(self, name: str) -> models.CapacityProvider | None:
        return self._providers.get(name)

    def providers(self) -> list[models.CapacityProvider]:
        return [self._providers[n] for n in sorted(self._providers)]

    def put_provider(self, provider: models.CapacityProvider) -> None:
        self._providers_t.put(provider)
        self._providers[provider.name] = provider

    def delete_provider(self, name: str, tags_arn: str) -> None:
        self._providers_t.delete(name)
        self.tags.put(tags_arn, {})
        self._providers.pop(name, None)

    # scaling configs -----------------------------------------------------------------------
    def scaling(self, function_name: str, qualifier: str) -> models.ScalingConfig | None:
        return self._scaling.get((function_name, qualifier))

    def put_scaling(self, function_name: str, qualifier: str, config: models.ScalingConfig) -> None:
        self._scaling_t.put(function_name, qualifier, config)
        self._scaling[(function_name, qualifier)] = config

    def delete_scaling(self, function_name: str, qualifier: str) -> None:
        self._scaling_t.delete(function_name, qualifier)
        self._scaling.pop((function_name, qualifier), None)

    # per-qualifier configuration (event invoke configs, function URLs) ----------------------
    def qualified(self, kind: str, function_name: str, qualifier: str) -> dict[str, Any] | None:
        return self._qualified.get(kind, {}).get((function_name, qualifier))

    def qualified_all(self, kind: str, function_name: str | None = None) -> list[dict[str, Any]]:
        """Every configuration of ``kind`` (of one function), ordered by function, qualifier."""
        found = self._qualified.get(kind, {})
        return [
            found[key] for key in sorted(found) if function_name is None or key[0] == function_name
        ]

    def put_qualified(
        self, kind: str, function_name: str, qualifier: str, config: dict[str, Any]
    ) -> None:
        self._qualified_t.put(kind, function_name, qualifier, config)
        self._qualified.setdefault(kind, {})[(function_name, qualifier)] = config

    def delete_qualified(self, kind: str, function_name: str, qualifier: str) -> None:
        self._qualified_t.delete(kind, function_name, qualifier)
        self._qualified.get(kind, {}).pop((function_name, qualifier), None)

    def _forget_qualified(self, function_name: str, qualifier: str | None) -> None:
        for found in self._qualified.values():
            for key in [k for k in found if k[0] == function_name]:
                if qualifier is None or key[1] == qualifier:
                    del found[key]

    # event invoke configs -------------------------------------------------------------------
    def event_invoke_config(
        self, function_name: str, qualifier: str
    ) -> models.EventInvokeConfig | None:
        data = self.qualified(EVENT_INVOKE, function_name, qualifier)
        return None if data is None else models.EventInvokeConfig(**data)

    def event_invoke_configs(self, function_name: str) -> list[models.EventInvokeConfig]:
        return [
            models.EventInvokeConfig(**data)
            for data in self.qualified_all(EVENT_INVOKE, function_name)
        ]

    def put_event_invoke_config(self, config: models.EventInvokeConfig) -> None:
        self.put_qualified(
            EVENT_INVOKE, config.function_name, config.qualifier, dataclasses.asdict(config)
        )

    # function URLs ----------------------------------------------------------------------------
    def url_config(self, function_name: str, qualifier: str) -> models.FunctionUrlConfig | None:
        data = self.qualified(URL, function_name, qualifier)
        return None if data is None else models.FunctionUrlConfig(**data)

    def url_configs(self, function_name: str | None = None) -> list[models.FunctionUrlConfig]:
        return [models.FunctionUrlConfig(**data) for data in self.qualified_all(URL, function_name)]

    def url_by_id(self, url_id: str) -> models.FunctionUrlConfig | None:
        for data in self._qualified.get(URL, {}).values():
            if data["url_id"] == url_id:
                return models.FunctionUrlConfig(**data)
        return None

    def put_url_config(self, config: models.FunctionUrlConfig) -> None:
        data = dataclasses.asdict(config)
        data["cors"] = None if config.cors is None else dict(config.cors)
        self.put_qualified(URL, config.function_name, config.qualifier, data)
