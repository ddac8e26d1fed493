"""CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions, UpdateFunctionCode,
UpdateFunctionConfiguration, DeleteFunction.

Creates and updates are done (code checked and unpacked, configuration stored) before the
answer, which still shows them in motion as AWS's answers do: CreateFunction answers
``Pending``, updates ``InProgress``; what is stored is already ``Active``/``Successful``
under a newer revision id, as AWS's would be once settled (``shapes.Motion``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api import shapes
from corral.api.body import Body
from corral.api.function_spec import ROLE_PATTERN, SpecContext, apply_settings, check_runtime
from corral.api.gate import KEY_SCOPE
from corral.api.http import handler, json_response, query, read_json
from corral.api.publishing import publish
from corral.api.routes.common import (
    check_revision,
    function_and_qualifier,
    latest_or_404,
    new_revision,
    now_s,
    paginate,
    services,
    version_or_404,
)
from corral.api.services import Services
from corral.auth import sigv4
from corral.auth.policy import ApiKey
from corral.core import errors, extras, models
from corral.core.arns import parse_function_name
from corral.store.code import StoredCode

__all__ = ["ROUTES", "spec_context"]

_CODE_URL_EXPIRES_S = 600  # AWS: the presigned URL is "valid for 10 minutes"

_MAX_TAGS = 50
_RUNTIME_AND_HANDLER = (
    "Runtime and Handler are mandatory parameters for functions created with Zip package type."
)


def spec_context(svc: Services) -> SpecContext:
    return SpecContext(svc.partition, svc.runtimes.available(), svc.catalog.provider)


async def _store_code(svc: Services, code: Body) -> StoredCode:
    for key in ("S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri"):
        if code.has(key):
            raise errors.InvalidRequest(
                f"Corral takes function code as ZipFile only ({key} is not supported): upload "
                "the zip itself, e.g. `aws lambda create-function --zip-file fileb://code.zip`."
            )
    encoded = code.string("ZipFile")
    if encoded is None:
        raise errors.InvalidRequest(
            "Code.ZipFile is required: upload the function's zip file (S3 and container images "
            "are not supported by Corral)."
        )
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise errors.InvalidRequest("Code.ZipFile is not valid base64.") from exc
    return await asyncio.to_thread(svc.code.put, data)


def _tags(body: Body) -> dict[str, str]:
    tags = body.string_map("Tags") or {}
    if len(tags) > _MAX_TAGS:
        raise errors.InvalidRequest("Number of tags exceeds resource tag limit.")
    extras.check_function_tags(tags)
    return tags


def _publish_flags(body: Body) -> tuple[bool, bool]:
    publish_flag = bool(body.boolean("Publish"))
    to = body.string("PublishTo", enum=("LATEST_PUBLISHED",))
    return publish_flag, to is not None


@handler
async def create_function(request: Request) -> Response:
    svc = services(request)
    body = await read_json(request, "CreateFunction")
    raw_name = body.string("FunctionName", required=True, min_len=1)
    assert raw_name is not None
    name, _ = parse_function_name(raw_name, svc.partition, allow_qualifier=False, creating=True)
    package = body.string("PackageType", enum=("Zip", "Image")) or "Zip"
    if package == "Image":
        raise errors.InvalidRequest(
            "Container image functions (PackageType Image) are not supported by Corral yet; "
            "package the function as a zip."
        )
    role = body.string("Role", required=True, max_len=10000, pattern=ROLE_PATTERN)
    runtime = body.string("Runtime")
    handler_name = body.string("Handler", max_len=128, pattern=r"[^\s]+")
    if runtime is None or handler_name is None:
        raise errors.InvalidRequest(_RUNTIME_AND_HANDLER)
    ctx = spec_context(svc)
    check_runtime(runtime, ctx)
    tags = _tags(body)
    publish_flag, to_latest = _publish_flags(body)
    code_body = body.obj("Code", required=True)
    assert code_body is not None and role is not None
    if svc.catalog.function(name) is not None:
        raise errors.Conflict(f"Function already exist: {name}")
    base = models.FunctionSpec(
        runtime=runtime, handler=handler_name, role=role, code_sha256="", code_size=0
    )
    spec = apply_settings(body, base, ctx)
    stored = await _store_code(svc, code_body)
    spec = dataclasses.replace(spec, code_sha256=stored.code_sha256, code_size=stored.size)
    if svc.catalog.function(name) is not None:
        raise errors.Conflict(f"Function already exist: {name}")
    latest = models.FunctionVersion(
        function_name=name,
        version=models.LATEST,
        spec=spec,
        state=(
            models.FunctionState.ACTIVE_NON_INVOCABLE
            if spec.managed is not None
            else models.FunctionState.ACTIVE
        ),
        last_modified_s=now_s(),
        revision_id=new_revision(),
    )
    answered_revision = new_revision()
    svc.catalog.create_function(
        models.Function(name=name, created_s=now_s()),
        latest,
        tags,
        svc.partition.function_arn(name),
    )
    shown = dataclasses.replace(latest, revision_id=answered_revision)
    if publish_flag or to_latest:
        shown = publish(svc, name, to_latest_published=to_latest)
    # Version 1 of Publish=true is shown under the unqualified ARN (recorded:
    # test_publish_version_on_create / create_response).
    return json_response(
        201,
        shapes.function_configuration(
            svc.partition,
            shown,
            arn=svc.partition.function_arn(name),
            motion=shapes.Motion.CREATING,
        ),
    )


def _code_location(request: Request, version: models.FunctionVersion) -> dict[str, str]:
    """Where to download the code: as AWS's, a URL presigned for 10 minutes (by the
    caller's own key) that works with any HTTP client."""
    digest = base64.b64decode(version.spec.code_sha256).hex()
    base = str(request.base_url).rstrip("/")
    path = f"/corral/v1/code/{digest}.zip"
    key: ApiKey | None = request.scope.get(KEY_SCOPE)
    if key is None:
        return {"RepositoryType": "S3", "Location": base + path}
    svc = services(request)
    query = sigv4.presign(
        path,
        request.headers.get("host", request.url.netloc),
        key.access_key_id,
        key.secret,
        svc.settings.region,
        now_s(),
        _CODE_URL_EXPIRES_S,
    )
    return {"RepositoryType": "S3", "Location": f"{base}{path}?{query}"}


def _shown_arn(svc: Services, version: models.FunctionVersion, qualifier: str | None) -> str:
    """The ARN a read names: the one asked for (an alias, or ``:$LATEST`` when named)."""
    if qualifier is None:
        return shapes.function_version_arn(svc.partition, version)
    return svc.partition.function_arn(version.function_name, qualifier)


@handler
async def get_function(request: Request) -> Response:
    svc = services(request)
    name, qualifier = function_and_qualifier(request)
    version = version_or_404(svc, name, qualifier)
    data: dict[str, object] = {
        "Configuration": shapes.function_configuration(
            svc.partition, version, arn=_shown_arn(svc, version, qualifier)
        ),
        "Code": _code_location(request, version),
    }
    if qualifier is None:
        tags = svc.catalog.tags.get(svc.partition.function_arn(name))
        if tags:
            data["Tags"] = tags
    record = svc.catalog.function(name)
    if record is not None and record.reserved_concurrency is not None:
        data["Concurrency"] = {"ReservedConcurrentExecutions": record.reserved_concurrency}
    return json_response(200, data)


@handler
async def get_function_configuration(request: Request) -> Response:
    svc = services(request)
    name, qualifier = function_and_qualifier(request)
    version = version_or_404(svc, name, qualifier)
    return json_response(
        200,
        shapes.function_configuration(
            svc.partition, version, arn=_shown_arn(svc, version, qualifier)
        ),
    )


@handler
async def list_functions(request: Request) -> Response:
    svc = services(request)
    which = query(request, "FunctionVersion")
    if which is not None and which != "ALL":
        raise errors.Validation(
            errors.constraint_message(
                which[:64], "functionVersion", "Member must satisfy enum value set: [ALL]"
            )
        )
    region = query(request, "MasterRegion")
    if region is not None and region != "ALL" and region != svc.partition.region:
        raise errors.InvalidRequest(f"MasterRegion {region[:64]} is not this Corral's region.")
    versions = []
    for function in svc.catalog.functions():
        if which == "ALL":
            versions.extend(svc.catalog.versions(function.name))
        else:
            latest = svc.catalog.version(function.name, models.LATEST)
            if latest is not None:
                versions.append(latest)
    page, marker = paginate(versions, request, lambda v: f"{v.function_name}:{v.version}")
    # With FunctionVersion=ALL every entry is qualified, $LATEST too (recorded:
    # test_list_functions / list_all); the default listing is unqualified.
    data: dict[str, object] = {
        "Functions": [
            shapes.function_configuration(
                svc.partition,
                v,
                listing=True,
                arn=shapes.qualified_arn(svc.partition, v) if which == "ALL" else None,
            )
            for v in page
        ]
    }
    if marker:
        data["NextMarker"] = marker
    return json_response(200, data)


@handler
async def update_function_code(request: Request) -> Response:
    svc = services(request)
    name, _ = function_and_qualifier(request, allow_qualifier=False)
    body = await read_json(request, "UpdateFunctionCode")
    latest = latest_or_404(svc, name)
    check_revision(body.string("RevisionId"), latest.revision_id)
    publish_flag, to_latest = _publish_flags(body)
    dry_run = bool(body.boolean("DryRun"))
    spec = apply_settings(
        Body({"Architectures": body.raw("Architectures")} if body.has("Architectures") else {}),
        latest.spec,
        spec_context(svc),
    )
    stored = await _store_code(svc, body)
    spec = dataclasses.replace(spec, code_sha256=stored.code_sha256, code_size=stored.size)
    updated = dataclasses.replace(
        latest, spec=spec, revision_id=new_revision(), last_modified_s=now_s()
    )
    if dry_run:
        return json_response(200, shapes.function_configuration(svc.partition, updated))
    answered = _store_update(svc, updated)
    if publish_flag or to_latest:
        # The answer is the new version's, as a create shows it (recorded:
        # test_publish_with_update / update_function_code_result, HTTP 200).
        version = publish(svc, name, to_latest_published=to_latest)
        return json_response(
            200,
            shapes.function_configuration(svc.partition, version, motion=shapes.Motion.CREATING),
        )
    return json_response(
        200, shapes.function_configuration(svc.partition, answered, motion=shapes.Motion.UPDATING)
    )


def _store_update(svc: Services, updated: models.FunctionVersion) -> models.FunctionVersion:
    """Store an updated ``$LATEST`` (settled, under a newer revision than the answer's, as
    AWS's is once its update completed); return the version the answer shows."""
    svc.catalog.put_version(dataclasses.replace(updated, revision_id=new_revision()))
    svc.scaler.poke()
    return updated


@handler
async def update_function_configuration(request: Request) -> Response:
    svc = services(request)
    name, _ = function_and_qualifier(request, allow_qualifier=False)
    body = await read_json(request, "UpdateFunctionConfiguration")
    latest = latest_or_404(svc, name)
    check_revision(body.string("RevisionId"), latest.revision_id)
    if body.has("CapacityProviderConfig") and latest.spec.managed is None:
        raise errors.InvalidRequest(
            "CapacityProviderConfig isn't supported for Lambda Default functions."
        )
    spec = apply_settings(body, latest.spec, spec_context(svc))
    updated = dataclasses.replace(
        latest, spec=spec, revision_id=new_revision(), last_modified_s=now_s()
    )
    answered = _store_update(svc, updated)
    return json_response(
        200, shapes.function_configuration(svc.partition, answered, motion=shapes.Motion.UPDATING)
    )


# An alias name, as opposed to a version (a qualifier DeleteFunction refuses).
_ALIAS_LIKE = re.compile(r"[a-zA-Z0-9-_]+")


@handler
async def delete_function(request: Request) -> Response:
    svc = services(request)
    name, qualifier = function_and_qualifier(request)
    # The qualifier is judged before the function is looked up (recorded:
    # test_ops_with_arn_qualifier_mismatch[delete_function], test_delete_on_nonexisting_*).
    if qualifier == models.LATEST:
        raise errors.InvalidRequest(
            "$LATEST version cannot be deleted without deleting the function."
        )
    published = qualifier is not None and (
        qualifier.isdigit() or qualifier == models.LATEST_PUBLISHED
    )
    if qualifier is not None and not published and _ALIAS_LIKE.fullmatch(qualifier):
        raise errors.InvalidRequest("Deletion of aliases is not currently supported.")
    latest = latest_or_404(svc, name)
    status = 202 if latest.spec.managed is not None else 204
    if qualifier is None:
        svc.catalog.delete_function(name, svc.partition.function_arn(name))
        svc.metrics.forget(name)
        svc.registry.forget_throttles(name)
        svc.scaler.poke()
        return json_response(status, None)
    users = [
        a.name
        for a in svc.catalog.aliases(name)
        if a.function_version == qualifier or qualifier in a.routing_weights
    ]
    if users:
        raise errors.Conflict(
            "Unable to delete version because the following aliases reference it: "
            f"[{', '.join(users)}]"
        )
    if published and svc.catalog.version(name, qualifier) is not None:
        svc.catalog.delete_version(name, qualifier)
        svc.scaler.poke()
    return json_response(status, None)


_FN = "/2015-03-31/functions/{function_name}"
ROUTES = [
    Route("/2015-03-31/functions", create_function, methods=["POST"]),
    Route("/2015-03-31/functions/", create_function, methods=["POST"]),
    Route("/2015-03-31/functions", list_functions, methods=["GET"]),
    Route("/2015-03-31/functions/", list_functions, methods=["GET"]),
    Route(_FN, get_function, methods=["GET"]),
    Route(_FN, delete_function, methods=["DELETE"]),
    Route(_FN + "/configuration", get_function_configuration, methods=["GET"]),
    Route(_FN + "/configuration", update_function_configuration, methods=["PUT"]),
    Route(_FN + "/code", update_function_code, methods=["PUT"]),
]
