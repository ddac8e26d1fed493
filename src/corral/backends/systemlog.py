"""A capacity provider's system log: instance lifecycle events, in AWS's shape.

Every backend writes them the same way, to ``/aws/lambda/capacity-provider/<name>``
(``LMI_FACTS`` §1.6): ``{timestamp, level, message, metadata{event, instanceId,
availabilityZones, instanceTypes, capacityProviderArn}}``. ``SystemLogLevel`` WARN keeps
only the failures. A launch failure the scaler meets at every tick is said once a minute.
"""

from __future__ import annotations

import json
import logging
import time

from corral.core import models
from corral.telemetry import logs

__all__ = ["SystemLog"]

_log = logging.getLogger("corral.backend")
# Which events each SystemLogLevel shows (LMI_FACTS §1.6).
_WARN_EVENTS = frozenset({"LaunchFailed", "TerminateFailed", "HealthCheckFailed"})
_REPEAT_S = 60.0


class SystemLog:
    """Writes providers' lifecycle events to the log sink."""

    def __init__(self, sink: logs.LogSink) -> None:
        self._sink = sink
        self._launch_failures: dict[tuple[str, str], float] = {}

    def event(
        self,
        provider: models.CapacityProvider,
        event: str,
        level: str,
        message: str,
        *,
        instance_id: str = "",
        zones: tuple[str, ...] = (),
        types: tuple[str, ...] = (),
    ) -> None:
        """One event of ``provider`` (kept unless its level hides it)."""
        configured = provider.system_log_level or "INFO"
        if configured == "WARN" and event not in _WARN_EVENTS:
            return
        now = time.time()
        record = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            + f".{int(now * 1000) % 1000:03d}Z",
            "level": level,
            "message": message,
            "metadata": {
                "event": event,
                "instanceId": instance_id,
                "availabilityZones": list(zones),
                "instanceTypes": list(types),
                "capacityProviderArn": provider.arn,
            },
        }
        group = provider.system_log_group
        self._sink.emit(logs.LogRecord(now, group, "instances", "", json.dumps(record)))
        _log.info("%s %s: %s", provider.name, event, message)

    def launch_failed(self, provider: models.CapacityProvider, message: str) -> None:
        """``LaunchFailed``, at most once a minute for the same provider and message."""
        now = time.monotonic()
        last = self._launch_failures.get((provider.name, message))
        if last is not None and now - last < _REPEAT_S:
            return
        self._launch_failures[(provider.name, message)] = now
        self.event(provider, "LaunchFailed", "WARN", message)
