"""PublishVersion and ListVersionsByFunction."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api import shapes
from corral.api.http import handler, json_response, read_json
from corral.api.publishing import publish
from corral.api.routes.common import function_and_qualifier, latest_or_404, paginate, services

__all__ = ["ROUTES"]


@handler
async def publish_version(request: Request) -> Response:
    svc = services(request)
    name, _ = function_and_qualifier(request, allow_qualifier=False)
    body = await read_json(request, "PublishVersion")
    to = body.string("PublishTo", enum=("LATEST_PUBLISHED",))
    version = publish(
        svc,
        name,
        description=body.string("Description", max_len=256),
        to_latest_published=to is not None,
        code_sha256=body.string("CodeSha256"),
        revision_id=body.string("RevisionId"),
    )
    return json_response(201, shapes.function_configuration(svc.partition, version))


@handler
async def list_versions_by_function(request: Request) -> Response:
    svc = services(request)
    name, _ = function_and_qualifier(request, allow_qualifier=False)
    latest_or_404(svc, name)
    versions = svc.catalog.versions(name)
    page, marker = paginate(versions, request, lambda v: v.version)
    data: dict[str, object] = {
        # Every entry is qualified, $LATEST too (recorded: test_publish_version_on_create).
        "Versions": [
            shapes.function_configuration(
                svc.partition, v, listing=True, arn=shapes.qualified_arn(svc.partition, v)
            )
            for v in page
        ]
    }
    if marker:
        data["NextMarker"] = marker
    return json_response(200, data)


_FN = "/2015-03-31/functions/{function_name}/versions"
ROUTES = [
    Route(_FN, publish_version, methods=["POST"]),
    Route(_FN, list_versions_by_function, methods=["GET"]),
]
