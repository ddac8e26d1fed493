"""The catalog writes through to SQLite: a new catalog on the same file sees everything."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from corral.core import models
from corral.store import codec
from corral.store.catalog import Catalog
from corral.store.db import Database
from corral.store.events import AsyncEvent, EventTable
from tests.factories import function_spec

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"


def version(
    name: str, number: str, state: models.FunctionState, **changes: Any
) -> models.FunctionVersion:
    return models.FunctionVersion(
        function_name=name,
        version=number,
        spec=function_spec(**changes),
        state=state,
        last_modified_s=1.0,
        revision_id=f"rev-{number}",
    )


def test_everything_written_is_read_back_by_a_fresh_catalog(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    catalog = Catalog(Database(path))
    managed = models.ManagedInstancesConfig(
        "arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp", 8, 4.0
    )
    provider = models.CapacityProvider(
        name="cp",
        arn="arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp",
        state=models.CapacityProviderState.ACTIVE,
        subnet_ids=("subnet-1",),
        security_group_ids=(),
        operator_role_arn="arn:aws:iam::123456789012:role/op",
        last_modified_s=2.0,
        scaling_mode=models.ScalingMode.MANUAL,
        scaling_policies=(
            models.ScalingPolicy("LambdaCapacityProviderAverageCPUUtilization", 30.0),
        ),
    )
    catalog.put_provider(provider)
    latest = version(
        "f",
        models.LATEST,
        models.FunctionState.ACTIVE_NON_INVOCABLE,
        managed=managed,
        memory_size_mb=4096,
        environment={"A": "1"},
    )
    catalog.create_function(models.Function("f", 1.0), latest, {"team": "x"}, ARN)
    source = dataclasses.replace(latest, revision_id="after-publish")
    published = catalog.publish_version(
        dataclasses.replace(latest, state=models.FunctionState.PENDING), source
    )
    assert published.version == "1"
    catalog.put_alias(models.Alias("f", "live", "1", "rev-a", routing_weights={}))
    catalog.put_scaling("f", "1", models.ScalingConfig(2, 5))
    catalog.set_reserved_concurrency("f", 7)
    events = EventTable(catalog.db)
    events.add(AsyncEvent("e1", "f", "", b"{}", "", 0, 0.0, 0.0))
    catalog.db.close()

    again = Catalog(Database(path))
    assert again.provider("cp") == provider
    assert again.version("f", models.LATEST) == source
    one = again.version("f", "1")
    assert one is not None and one.state is models.FunctionState.PENDING
    assert again.alias("f", "live") == models.Alias("f", "live", "1", "rev-a", routing_weights={})
    assert again.scaling("f", "1") == models.ScalingConfig(2, 5)
    assert again.function("f") == models.Function(
        "f",
        1.0,
        reserved_concurrency=7,
        last_version_number=1,
        published_spec=codec.spec_digest(latest.spec),
    )
    assert again.tags.get(ARN) == {"team": "x"}
    assert [e.id for e in EventTable(again.db).due(1.0, 10)] == ["e1"]
    again.db.close()


def test_deleting_a_function_removes_its_versions_aliases_scaling_and_tags(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    catalog = Catalog(Database(path))
    catalog.create_function(
        models.Function("g", 1.0),
        version("g", models.LATEST, models.FunctionState.ACTIVE),
        {"k": "v"},
        ARN,
    )
    latest_g = version("g", models.LATEST, models.FunctionState.ACTIVE)
    catalog.publish_version(version("g", "0", models.FunctionState.ACTIVE), latest_g)
    catalog.put_alias(models.Alias("g", "a", "1", "r"))
    catalog.put_scaling("g", "1", models.ScalingConfig(1, 1))
    catalog.delete_function("g", ARN)
    catalog.db.close()
    again = Catalog(Database(path))
    assert again.function("g") is None and again.versions("g") == []
    assert again.aliases("g") == [] and again.scaling("g", "1") is None
    assert again.tags.get(ARN) == {}
    assert again.db.query("SELECT COUNT(*) FROM versions")[0][0] == 0
    again.db.close()


def test_version_numbers_keep_counting_after_a_version_is_deleted(tmp_path: Path) -> None:
    catalog = Catalog(Database(tmp_path / "corral.db"))
    catalog.create_function(
        models.Function("h", 1.0), version("h", models.LATEST, models.FunctionState.ACTIVE), {}, ARN
    )
    latest = version("h", models.LATEST, models.FunctionState.ACTIVE)
    first = catalog.publish_version(version("h", "0", models.FunctionState.ACTIVE), latest)
    catalog.delete_version("h", first.version)
    second = catalog.publish_version(version("h", "0", models.FunctionState.ACTIVE), latest)
    assert (first.version, second.version) == ("1", "2")
    catalog.db.close()
