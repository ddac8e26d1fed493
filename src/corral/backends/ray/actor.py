"""The agent of one instance, as a Ray actor pinned to its node.

The actor is a shell: it starts a thread running its own event loop (uvloop), where the
node agent (``agent.node.NodeAgent``) runs, listening on the node's address for the
server's link. Ray's own calls (``address``, ``stop``, ``exit``) only start and stop it. The
actor's process is the agent's: if Ray ends it (the node dies, the server's driver goes), the
agent goes, and the runtimes it started get their parent-death signal.

The node's scratch data (code cache, sockets, sandbox state) lives under
``<tmp>/corral-node-<digest of the node id>``; runtimes in the node's runtimes directory,
installed there on first use if missing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import ray

from corral.agent.node import NodeAgent
from corral.core.settings import Settings

__all__ = ["AgentActor", "node_settings"]

_START_TIMEOUT_S = 300.0  # a runtime may have to be installed first
_STOP_TIMEOUT_S = 120.0


def node_settings(settings: Settings, node_id: str) -> Settings:
    """The server's settings as one node's agent uses them: its own scratch directory.

    Named by a digest of the whole node id: ids may share a prefix (the autoscaler's fake
    nodes do), and two nodes of one machine must never share a directory.
    """
    digest = hashlib.sha256(node_id.encode()).hexdigest()[:16]
    data_dir = Path(tempfile.gettempdir()) / f"corral-node-{digest}"
    return dataclasses.replace(settings, data_dir=data_dir, run_root=tempfile.gettempdir())


@ray.remote(num_cpus=0, max_restarts=0)
class AgentActor:
    """A node agent running in this actor's process, on its own event loop."""

    def __init__(self, settings: Settings, instance_id: str, secret: bytes) -> None:
        import uvloop

        self._loop = uvloop.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="corral-agent", daemon=True
        )
        self._thread.start()
        node_id = ray.get_runtime_context().get_node_id()
        self._host: str = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]  # Ray
        self._agent: NodeAgent | None = None
        started: Future[tuple[NodeAgent, int]] = asyncio.run_coroutine_threadsafe(
            self._start(node_settings(settings, node_id), instance_id, secret), self._loop
        )
        self._agent, self._port = started.result(timeout=_START_TIMEOUT_S)

    async def _start(
        self, settings: Settings, instance_id: str, secret: bytes
    ) -> tuple[NodeAgent, int]:
        agent = NodeAgent(settings, instance_id, secret)
        port = await agent.start(self._host)
        return agent, port

    def address(self) -> tuple[str, int]:
        """Where the agent listens for the server's link."""
        return self._host, self._port

    def describe(self) -> dict[str, Any]:
        agent = self._agent
        return {
            "sandbox": agent.sandbox_name if agent else "",
            "warnings": list(agent.warnings) if agent else [],
        }

    def stop(self) -> None:
        """Stop every environment and the agent (the actor can then be killed)."""
        if self._agent is not None:
            asyncio.run_coroutine_threadsafe(self._agent.stop(), self._loop).result(
                timeout=_STOP_TIMEOUT_S
            )
            self._agent = None
        self._loop.call_soon_threadsafe(self._loop.stop)

    def exit(self) -> None:
        """End the actor's process the orderly way (its exit handlers run), after ``stop``."""
        ray.actor.exit_actor()  # type: ignore[no-untyped-call]  # Ray
