"""A real Ray cluster on this machine, for tests and benchmarks: a head and ``corral`` nodes,
each on its own loopback address, like hosts of their own.

Every node is a ``ray start --block`` in a session of its own; it is stopped by signalling
its process group and then any process left of its tree (Ray's worker and actor processes
get process groups of their own). Nothing here runs ``ray stop``, which would end every Ray
process of the machine, ours or not. Never ``127.0.0.1``: Ray replaces it with the
machine's routable address, which no test may send traffic to.

Nodes are small: a head with no CPU, workers with 2 CPUs, 8 GiB declared, a 100 MB object
store, no dashboard. The head's health checks are tuned (a dead node is noticed in about
1.3 s instead of 15 s) and nodes stop at once (no 30 s drain).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

__all__ = ["RayCluster", "RayNode"]

# Ray's command line through this interpreter (not the `ray` script, which a broken install
# may lack).
RAY = [sys.executable, "-m", "ray.scripts.scripts"]
HEAD_IP = "127.0.0.12"
_TUNED_HEAD = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_initial_delay_ms": "1000",
}
_QUICK = {"RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0", "RAY_AUTH_MODE": "disabled"}


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RayNode:
    """One ``ray start --block`` process and its tree."""

    ip: str
    proc: subprocess.Popen[bytes]
    log: Path
    seen: set[int] = field(default_factory=set)

    def tree(self) -> set[int]:
        """The node's processes now (and every one seen before)."""
        try:
            root = psutil.Process(self.proc.pid)
            self.seen |= {root.pid} | {p.pid for p in root.children(recursive=True)}
        except psutil.NoSuchProcess:
            pass
        return set(self.seen)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """End the node's whole process tree at once (a machine that dies)."""
        pids = self.tree()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if sig == signal.SIGKILL:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)  # reaped: no zombie left behind

    def stop(self) -> None:
        """Stop the node: SIGTERM, then SIGKILL for what is left after a few seconds."""
        pids = self.tree()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(psutil.pid_exists(p) for p in pids):
            time.sleep(0.1)


class RayCluster:
    """A head and ``corral`` worker nodes on loopback addresses."""

    def __init__(
        self,
        root: Path | None = None,
        head_env: dict[str, str] | None = None,
        head_args: list[str] | None = None,
    ) -> None:
        # Socket paths under it must stay short (108 bytes).
        self.root = root or Path(tempfile.mkdtemp(prefix="cr-", dir="/tmp"))
        self.port = _free_port(HEAD_IP)
        self.address = f"{HEAD_IP}:{self.port}"
        self.nodes: list[RayNode] = []
        self._head_env = head_env or {}
        self._head_args = head_args or []
        self._next = 13

    def start(self, workers: int = 2, **worker_options: Any) -> RayCluster:
        """Start the head and ``workers`` corral nodes (all stopped again on a failure)."""
        try:
            self.nodes.append(
                self._start(
                    HEAD_IP,
                    ["--head", "--port", str(self.port), "--num-cpus", "0"]
                    + ["--include-dashboard=false", *self._head_args],
                    {**_TUNED_HEAD, **self._head_env},
                )
            )
            for _ in range(workers):
                self.add_worker(**worker_options)
        except BaseException:
            self.stop()
            raise
        return self

    def add_worker(
        self,
        cpus: int = 2,
        memory_gib: int = 8,
        instance_type: str = "m7i.large",
        resources: str = '{"corral": 1}',
    ) -> RayNode:
        ip = f"127.0.0.{self._next}"
        self._next += 1
        args = [
            "--address",
            self.address,
            "--num-cpus",
            str(cpus),
            "--memory",
            str(memory_gib * 1024**3),
            "--resources",
            resources,
        ]
        if instance_type:
            args += ["--labels", f"corral-instance-type={instance_type}"]
        node = self._start(ip, args, {})
        self.nodes.append(node)
        return node

    def _start(self, ip: str, args: list[str], env: dict[str, str]) -> RayNode:
        log = self.root / f"node-{ip}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    *RAY,
                    "start",
                    "--block",
                    "--node-ip-address",
                    ip,
                    "--object-store-memory",
                    "100000000",
                    "--disable-usage-stats",
                    "--include-log-monitor=false",
                    "--temp-dir",
                    str(self.root / f"t{ip.rsplit('.', 1)[1]}"),
                    *args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **_QUICK, **env, "RAY_TMPDIR": str(self.root)},
                start_new_session=True,
            )
        node = RayNode(ip, proc, log)
        try:
            self._wait_for(node)
        except BaseException:
            node.stop()
            raise
        return node

    def _wait_for(self, node: RayNode, timeout_s: float = 90.0) -> None:
        """Until the node is part of the cluster (its ``ray start`` says so)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = node.log.read_text(errors="replace") if node.log.exists() else ""
            if "Ray runtime started" in text or "--block" in text and "started" in text:
                return
            if node.proc.poll() is not None:
                raise RuntimeError(f"ray start on {node.ip} exited:\n{text[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"ray start on {node.ip} did not start in {timeout_s} s")

    def stop(self) -> None:
        """Stop every node (workers first), then remove the scratch directory."""
        for node in reversed(self.nodes):
            node.stop()
        self.nodes.clear()
        shutil.rmtree(self.root, ignore_errors=True)
