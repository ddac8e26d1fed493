"""Corral's own endpoints: ``/health``, code downloads, and the observed state."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.agent.environment import ExecutionEnvironment
from corral.api.http import handler, json_response
from corral.api.routes.common import services
from corral.api.services import Services
from corral.core import errors

__all__ = ["ROUTES"]

_SHA = re.compile(r"[0-9a-f]{64}")


async def health(request: Request) -> Response:
    svc = services(request)
    return json_response(
        200 if svc.started else 503,
        {"status": "ok" if svc.started else "starting", "sandbox": svc.sandbox.name},
    )


@handler
async def download_code(request: Request) -> Response:
    svc = services(request)
    digest = request.path_params["digest"]
    if not _SHA.fullmatch(digest):
        raise errors.NotFound("No such code package")
    try:
        data = svc.code.read_zip(digest)
    except OSError as exc:
        raise errors.NotFound("No such code package") from exc
    return Response(data, media_type="application/zip")


@handler
async def state(request: Request) -> Response:
    svc = services(request)
    providers = []
    instances = svc.backend.instances()
    for provider in svc.catalog.providers():
        providers.append(
            {
                "name": provider.name,
                "state": provider.state.value,
                "instances": [
                    _instance(svc, i.id, i.instance_type, i.vcpus, i.memory_mib)
                    for i in instances
                    if i.capacity_provider == provider.name
                ],
            }
        )
    on_demand = [
        _environment(svc, e) for e in svc.registry.all() if e.config.capacity_provider is None
    ]
    return json_response(
        200,
        {
            "sandbox": svc.sandbox.name,
            "capacityProviders": providers,
            "onDemand": on_demand,
            "asyncQueue": svc.async_invoker.pending,
        },
    )


def _instance(
    svc: Services, instance_id: str, kind: str, vcpus: int, memory_mib: int
) -> dict[str, object]:
    envs = [e for e in svc.registry.all() if e.config.instance_id == instance_id]
    return {
        "id": instance_id,
        "instanceType": kind,
        "state": "Running",
        "vCpu": vcpus,
        "memoryMiB": memory_mib,
        "vCpuAllocated": sum(e.config.vcpus for e in envs),
        "memoryAllocatedMiB": sum(e.config.spec.memory_size_mb for e in envs),
        "environments": [_environment(svc, e) for e in envs],
    }


def _environment(svc: Services, env: ExecutionEnvironment) -> dict[str, object]:
    return {
        "id": env.id,
        "functionArn": svc.partition.function_arn(env.ref.function, env.ref.version),
        "state": env.state.value,
        "concurrency": env.outstanding,
        "concurrencyLimit": env.concurrency,
        "pid": env.pid,
        "memoryBytes": env.peak_memory_bytes,
    }


ROUTES = [
    Route("/health", health, methods=["GET"]),
    Route("/corral/v1/code/{digest}.zip", download_code, methods=["GET"]),
    Route("/corral/v1/state", state, methods=["GET"]),
]
