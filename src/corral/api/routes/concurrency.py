"""PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency,
GetAccountSettings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.http import handler, json_response, read_json
from corral.api.routes.common import function_and_qualifier, latest_or_404, services
from corral.core import errors
from corral.core.models import LATEST
from corral.store.code import MAX_UNZIPPED_BYTES, MAX_ZIPPED_BYTES

__all__ = ["ROUTES"]

_FUNCTIONS_ONLY = (
    "This operation is permitted on Lambda functions only. Aliases and versions do not "
    "support this operation. Please specify either a function name or an unqualified "
    "function ARN."
)


@handler
async def put_function_concurrency(request: Request) -> Response:
    svc = services(request)
    name, qualifier = function_and_qualifier(request)
    if qualifier is not None:
        raise errors.InvalidRequest(_FUNCTIONS_ONLY)
    body = await read_json(request, "PutFunctionConcurrency")
    record = svc.catalog.function(name)
    if record is None:
        # Recorded: test_function_concurrency_exceptions (":$LATEST", before the value).
        raise errors.NotFound(f"Function not found: {svc.partition.function_arn(name, LATEST)}")
    value = body.integer("ReservedConcurrentExecutions", required=True, low=0)
    assert value is not None
    others = sum(f.reserved_concurrency or 0 for f in svc.catalog.functions() if f.name != name)
    minimum = svc.settings.min_unreserved_concurrency
    if svc.settings.account_concurrency_limit - others - value < minimum:
        raise errors.InvalidRequest(
            f"Specified ReservedConcurrentExecutions for function decreases account's "
            f"UnreservedConcurrentExecution below its minimum value of [{minimum}]."
        )
    svc.catalog.set_reserved_concurrency(name, value)
    return json_response(200, {"ReservedConcurrentExecutions": value})


@handler
async def get_function_concurrency(request: Request) -> Response:
    svc = services(request)
    name, _ = function_and_qualifier(request, allow_qualifier=False)
    latest_or_404(svc, name)
    record = svc.catalog.function(name)
    data = {}
    if record is not None and record.reserved_concurrency is not None:
        data["ReservedConcurrentExecutions"] = record.reserved_concurrency
    return json_response(200, data)


@handler
async def delete_function_concurrency(request: Request) -> Response:
    svc = services(request)
    name, _ = function_and_qualifier(request, allow_qualifier=False)
    latest_or_404(svc, name)
    svc.catalog.set_reserved_concurrency(name, None)
    return json_response(204, None)


@handler
async def get_account_settings(request: Request) -> Response:
    svc = services(request)
    functions = svc.catalog.functions()
    total_code = sum(v.spec.code_size for v in svc.catalog.all_versions())
    return json_response(
        200,
        {
            "AccountLimit": {
                "TotalCodeSize": 80_530_636_800,
                "CodeSizeUnzipped": MAX_UNZIPPED_BYTES,
                "CodeSizeZipped": MAX_ZIPPED_BYTES,
                "ConcurrentExecutions": svc.settings.account_concurrency_limit,
                "UnreservedConcurrentExecutions": svc.router.unreserved_limit(),
            },
            "AccountUsage": {"TotalCodeSize": total_code, "FunctionCount": len(functions)},
        },
    )


ROUTES = [
    Route(
        "/2017-10-31/functions/{function_name}/concurrency",
        put_function_concurrency,
        methods=["PUT"],
    ),
    Route(
        "/2019-09-30/functions/{function_name}/concurrency",
        get_function_concurrency,
        methods=["GET"],
    ),
    Route(
        "/2017-10-31/functions/{function_name}/concurrency",
        delete_function_concurrency,
        methods=["DELETE"],
    ),
    Route("/2016-08-19/account-settings", get_account_settings, methods=["GET"]),
    Route("/2016-08-19/account-settings/", get_account_settings, methods=["GET"]),
]
