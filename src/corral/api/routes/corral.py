"""Corral's own endpoints: ``/health``, code downloads, and the observed state."""

from __future__ import annotations

import asyncio
import os
import re

import psutil
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from corral.agent.environment import EnvironmentConfig
from corral.agent.handle import EnvironmentHandle
from corral.api.http import handler, json_response
from corral.api.routes.common import services
from corral.api.services import Services
from corral.backends.base import ON_DEMAND, InstanceInfo
from corral.core import errors, models

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
    path = svc.code.zip_path(digest)
    if not await asyncio.to_thread(path.is_file):
        raise errors.NotFound("No such code package")
    # Streamed from the disk by a worker thread, never read whole on the event loop.
    return FileResponse(path, media_type="application/zip")


@handler
async def state(request: Request) -> Response:
    svc = services(request)
    return json_response(200, observed_state(svc))


def observed_state(svc: Services) -> dict[str, object]:
    """What runs where: providers, instances, environments, the host, throttles."""
    by_instance: dict[str, list[EnvironmentHandle]] = {}
    for environment in svc.registry.all():
        by_instance.setdefault(environment.config.instance_id, []).append(environment)
    instances = svc.backend.instances()
    providers = []
    for provider in svc.catalog.providers():
        mine = [i for i in instances if i.capacity_provider == provider.name]
        providers.append(
            {
                "name": provider.name,
                "arn": provider.arn,
                "state": provider.state.value,
                "scalingMode": provider.scaling_mode.value,
                "maxVCpuCount": provider.max_vcpu_count,
                "vCpuInUse": sum(
                    i.vcpus for i in mine if i.state is not models.InstanceState.TERMINATED
                ),
                "instances": [_instance(svc, i, by_instance.get(i.id, [])) for i in mine],
                "idleTimeoutS": svc.provider_extras(provider.name).idle_timeout_s,
            }
        )
    # Instances on this host: every one with the local backend, none with Ray's.
    backend = svc.backend.describe()
    on_host = instances if backend["name"] == "local" else []
    live = [i for i in on_host if i.state is not models.InstanceState.TERMINATED]
    host_vcpus = os.cpu_count() or 1
    host_memory_mib = int(psutil.virtual_memory().total // (1024 * 1024))
    sliced_vcpus = sum(i.vcpus for i in live)
    sliced_memory = sum(i.memory_mib for i in live)
    return {
        "region": svc.partition.region,
        "accountId": svc.partition.account_id,
        "backend": backend,
        "sandbox": svc.sandbox.name,
        "sandboxInfo": svc.sandbox.describe(),
        "warnings": list(svc.sandbox_warnings) + svc.backend.warnings,
        "host": {
            "vCpu": host_vcpus,
            "memoryMiB": host_memory_mib,
            "instanceVCpu": sliced_vcpus,
            "instanceMemoryMiB": sliced_memory,
            "overcommitted": sliced_vcpus > host_vcpus or sliced_memory > host_memory_mib,
        },
        "capacityProviders": providers,
        "onDemand": [_environment(svc, e) for e in by_instance.get(ON_DEMAND, [])],
        "throttles": [
            {
                "functionArn": svc.partition.function_arn(ref.function, ref.version),
                "cause": cause,
                "count": count,
            }
            for (ref, cause), count in sorted(svc.registry.throttles.items())
        ],
        "asyncQueue": svc.async_invoker.pending,
        "asyncFailed": svc.async_invoker.failed_count,
        "functionUrls": [
            {
                "functionArn": svc.partition.function_arn(
                    url.function_name, None if url.qualifier == models.LATEST else url.qualifier
                ),
                "url": svc.function_url(url.url_id),
                "authType": url.auth_type,
                "invokeMode": url.invoke_mode,
                "public": url.auth_type == "NONE",
            }
            for url in svc.catalog.url_configs()
        ],
        "scaledToZero": [
            svc.partition.function_arn(ref.function, ref.version)
            for ref in svc.scaler.scaled_to_zero()
        ],
    }


def _instance(
    svc: Services, info: InstanceInfo, environments: list[EnvironmentHandle]
) -> dict[str, object]:
    return {
        "id": info.id,
        "instanceType": info.instance_type.name,
        "state": info.state.value,
        "availabilityZone": info.availability_zone,
        "vCpu": info.vcpus,
        "memoryMiB": info.memory_mib,
        "vCpuAllocated": info.vcpus_allocated,
        "memoryAllocatedMiB": info.memory_allocated_mib,
        "cpuUtilization": round(info.cpu_utilization, 4),
        "memoryUtilization": round(info.memory_utilization, 4),
        "node": info.node,
        "address": info.address,
        "environments": [_environment(svc, e) for e in environments],
    }


def _environment(svc: Services, env: EnvironmentHandle) -> dict[str, object]:
    return {
        "id": env.id,
        "functionArn": svc.partition.function_arn(env.ref.function, env.ref.version),
        "state": env.state.value,
        "concurrency": env.outstanding,
        "concurrencyLimit": env.concurrency,
        "cpuUtilization": round(env.cpu_utilization, 4),
        "memoryUtilization": round(env.memory_utilization, 4),
        "vCpu": env.config.vcpus,
        "memoryMiB": env.config.spec.memory_size_mb,
        "pid": env.pid,
        "logStream": env.log_stream,
        "endReason": env.end_reason,
        "initDurationMs": None if env.init_duration_ms is None else round(env.init_duration_ms, 1),
        "workerPool": _worker_pool(env.config),
    }


def _worker_pool(config: EnvironmentConfig) -> str:
    """Who runs the environment's workers (docs/beyond-aws.md)."""
    if config.interpreter.is_node:
        return "aws-lambda-ric"
    if not config.owns_workers:
        return "awslambdaric"
    return "corral: forked after init" if config.fork_after_init else "corral"


ROUTES = [
    Route("/health", health, methods=["GET"]),
    Route("/corral/v1/code/{digest}.zip", download_code, methods=["GET"]),
    Route("/corral/v1/state", state, methods=["GET"]),
]
