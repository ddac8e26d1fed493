"""Publishing versions: numbered ones and ``$LATEST.PUBLISHED``.

A new numbered version is published when ``$LATEST`` changed (code or configuration,
description included) since the last one was published from it; otherwise the last version
is returned as it is, whatever ``Description`` is asked for (PublishVersion API reference;
recorded: ``test_version_lifecycle``). Publishing gives ``$LATEST`` a new revision id.

A classic version is ``Active`` at once (its environments start on demand). A Managed
Instances version starts ``Pending``: the scaler starts its minimum environments and marks
it ``Active`` (or ``Failed``). Republishing ``$LATEST.PUBLISHED`` keeps it invocable on the
old environments (``LastUpdateStatus=InProgress``) until the new ones are ready.
"""

from __future__ import annotations

import dataclasses

from corral.api.routes.common import check_revision, latest_or_404, new_revision, now_s
from corral.api.services import Services
from corral.core import errors, models
from corral.store import codec

__all__ = ["MAX_VERSIONS_PER_PROVIDER", "publish"]

MAX_VERSIONS_PER_PROVIDER = 100


def publish(
    svc: Services,
    name: str,
    *,
    description: str | None = None,
    to_latest_published: bool = False,
    code_sha256: str | None = None,
    revision_id: str | None = None,
) -> models.FunctionVersion:
    """Publish ``$LATEST`` of ``name``; return the new (or unchanged) version.

    Raises:
        errors.NotFound, errors.InvalidRequest, errors.PreconditionFailed, errors.LimitExceeded.
    """
    latest = latest_or_404(svc, name)
    check_revision(revision_id, latest.revision_id)
    if code_sha256 is not None and code_sha256 != latest.spec.code_sha256:
        raise errors.InvalidRequest(
            f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST "
            f"({latest.spec.code_sha256}). Please try again with the CodeSHA256 in $LATEST."
        )
    spec = latest.spec
    if description is not None:
        spec = dataclasses.replace(spec, description=description)
    managed = spec.managed is not None
    if to_latest_published:
        if not managed:
            raise errors.InvalidRequest(
                "PublishTo LATEST_PUBLISHED is only supported for functions with capacity "
                "provider configuration."
            )
        return _publish_latest_published(svc, name, spec)
    previous = _last_numbered(svc, name)
    if previous is not None and _unchanged_since(svc, latest, previous):
        return previous
    if managed:
        _check_provider_quota(svc, spec)
    pending = _new_version(name, "0", spec, managed)
    source = dataclasses.replace(latest, revision_id=new_revision())
    published = svc.catalog.publish_version(pending, source)
    svc.scaler.poke()
    return published


def _publish_latest_published(
    svc: Services, name: str, spec: models.FunctionSpec
) -> models.FunctionVersion:
    existing = svc.catalog.version(name, models.LATEST_PUBLISHED)
    if existing is None or existing.state is not models.FunctionState.ACTIVE:
        if existing is None:
            _check_provider_quota(svc, spec)
        version = _new_version(name, models.LATEST_PUBLISHED, spec, True)
    else:
        version = dataclasses.replace(
            existing,
            spec=spec,
            revision_id=new_revision(),
            last_modified_s=now_s(),
            last_update_status=models.LastUpdateStatus.IN_PROGRESS,
            last_update_status_reason="The function is being updated.",
            last_update_status_reason_code="Updating",
        )
    svc.catalog.put_version(version)
    svc.scaler.poke()
    return version


def _new_version(
    name: str, number: str, spec: models.FunctionSpec, managed: bool
) -> models.FunctionVersion:
    if managed:
        return models.FunctionVersion(
            function_name=name,
            version=number,
            spec=spec,
            state=models.FunctionState.PENDING,
            state_reason="The function is being created.",
            state_reason_code="Creating",
            last_update_status=models.LastUpdateStatus.IN_PROGRESS,
            last_update_status_reason="The function is being created.",
            last_update_status_reason_code="Creating",
            last_modified_s=now_s(),
            revision_id=new_revision(),
        )
    return models.FunctionVersion(
        function_name=name,
        version=number,
        spec=spec,
        state=models.FunctionState.ACTIVE,
        last_modified_s=now_s(),
        revision_id=new_revision(),
    )


def _last_numbered(svc: Services, name: str) -> models.FunctionVersion | None:
    numbered = [v for v in svc.catalog.versions(name) if v.version.isdigit()]
    return numbered[-1] if numbered else None


def _unchanged_since(
    svc: Services, latest: models.FunctionVersion, previous: models.FunctionVersion
) -> bool:
    """Whether ``$LATEST`` is what the last version was published from."""
    record = svc.catalog.function(latest.function_name)
    if record is None or previous.version != str(record.last_version_number):
        return False  # the last one published was deleted since
    if record.published_spec:
        return record.published_spec == codec.spec_digest(latest.spec)
    # Published before the digest was kept: compare with the version itself.
    return dataclasses.replace(previous.spec, description="") == dataclasses.replace(
        latest.spec, description=""
    )


def _check_provider_quota(svc: Services, spec: models.FunctionSpec) -> None:
    if spec.managed is None:
        return
    provider = spec.managed.capacity_provider_name
    count = sum(
        1
        for v in svc.catalog.all_versions()
        if v.spec.managed is not None
        and v.spec.managed.capacity_provider_name == provider
        and models.is_published(v.version)
    )
    if count >= MAX_VERSIONS_PER_PROVIDER:
        raise errors.LimitExceeded(
            f"Capacity provider {provider} already has {MAX_VERSIONS_PER_PROVIDER} function "
            "versions, the most it can hold. Delete versions you no longer use.",
            lambda_error="FunctionVersionsPerCapacityProviderLimitExceededException",
        )
